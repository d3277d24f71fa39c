"""Telling the owner what the scheduler is about to do and what it did.

``notify``: the one way a message reaches ``[owner] email`` (through the
configured transport, recorded, at most once a day per kind and subject);
``receipts``: the summary after each campaign; ``alerts``: faults the owner
must hear about; ``hold``: the heads-up before a scheduled send and its
"Hold this send" link.
"""
