"""The dashboard's foundation (issue 15): accounts, the login, sessions, roles, CSRF, the
first-run setup link and the queue page, through the app in-process (httpx ASGI).

By topic: test_routes.py (who may use each route; forged session cookies),
test_csrf.py (the form token on every post), test_login.py (login, logout, inactivity,
the cookie, the login limits), test_setup_link.py (the first owner), test_queue_page.py
(the dashboard's home page). Fixtures: conftest.py; the accounts, logging in and the route
table: tests/web/admin_helpers.py.
"""
