"""Claims under stress: owners, leases, token-matched write-backs, long suppressed runs.

SQLite and PostgreSQL; other senders are real processes (``tests/fakes/claimer.py``).
"""
