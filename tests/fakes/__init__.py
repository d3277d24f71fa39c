"""Loopback fakes that speak the real protocols: SendGrid v3, SMTP, DNS, HTTP, a claiming sender."""
