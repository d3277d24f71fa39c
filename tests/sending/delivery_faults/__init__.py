"""The ledger's promise under faults, through the SendGrid transport and a real server.

Every scenario ends with the same two checks: each subscriber arrived exactly
once (or, for rows the ledger marks uncertain, at most once), and the counts
add up: sent + failed + uncertain + suppressed + pending = planned.
"""
