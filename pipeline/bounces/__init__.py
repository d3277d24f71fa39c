"""Bounces that arrive as mail: delivery status notifications read from a mailbox.

``settings`` (the ``[bounces]`` section), ``mailbox`` (Maildir and IMAP
readers that hand over each message once), ``dsn`` (flufl.bounce turns a
message into permanent-failure addresses; a known subscriber is marked
bounced) and ``job`` (the scheduler's read every few minutes). The SMTP
replies at send time are read in
:mod:`pipeline.sending.transports.smtp_replies`; SendGrid's webhook in
:mod:`pipeline.events`.
"""
