"""The SMTP transport against a real SMTP server on 127.0.0.1 (aiosmtpd, see smtp_server.py)."""
