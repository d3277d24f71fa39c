"""Crontab and DST, the catch-up policy, scheduler jobs and the service."""
