"""What a black-box probe of the web app found (issue 12): enumeration, proxies, CSRF, HEAD,
signed webhook edge cases and large batches, through the app and a real server on loopback.

By finding: test_enumeration.py (whether an address is subscribed cannot be told),
test_forwarded_for.py (X-Forwarded-For only from trusted proxies), test_webhook_limits.py
(the webhook: refused before its body, bounded in flight, unparsable bodies, large
batches), test_origin_and_head.py (the form's origin, HEAD), test_server.py (serve's
uvicorn settings, and a real server on loopback). Shared addresses and helpers: helpers.py;
the fixtures are tests/web_fixtures.py's.
"""
