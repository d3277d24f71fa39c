"""The dashboard's Schedule and Campaigns pages (issue 15), through the app in-process.

Every send here is real: the sample folder's outbox transport, the ledger, the
runner in the dashboard's background thread. Roles and CSRF for every route
are also covered by the route table in tests/web/admin_access/test_routes.py.

By topic: test_schedule.py (the Schedule page), test_sends.py (send now, retry,
resend: the background sends), test_campaign_pages.py (the pages and the live
stream), test_charts.py (the SVG charts). Fixtures: conftest.py; shared helpers:
helpers.py.
"""
