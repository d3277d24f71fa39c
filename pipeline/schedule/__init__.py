"""Crontab and DST, the catch-up policy, scheduler jobs and the service.

``crontab`` (standard crontab to APScheduler triggers), ``triggers`` (once per
local time across DST), ``catch_up`` (what happens to a missed firing),
``jobs`` (what each firing does), ``recurring`` (the stored recurring job),
``leadership`` (the lease) and ``service`` (:class:`SchedulerService`).
Nothing is re-exported here on purpose: :mod:`pipeline.content.queue` imports
``crontab``, and importing the service from this package would pull in the
whole pipeline (and an import cycle) with it.
"""
