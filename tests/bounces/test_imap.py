"""Bounce mail read over IMAP with TLS, for real, from a server on 127.0.0.1 (issue 16).

The server (tests/fakes/imap_server.py) presents a self-signed certificate made
at test time. The client verifies it like any other: it trusts the system's
CA store, which OpenSSL lets ``SSL_CERT_FILE`` replace, so the test points
that at the certificate. Without it the read fails on the certificate: the
check is real. The same Maildir fixtures of real-world DSNs are served; the
`newsletter bounces` command runs as a subprocess on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.bounces.test_bounce_mail import FIXTURES, NOT_GONE, PERMANENT
from tests.fakes.imap_server import ImapTestServer
from tests.fakes.smtp_server import make_certificate
from tests.helpers import copy_sample_folder

PASSWORD = "imap-secret"


def _cli(
    config: Path, *args: str, database_url: str, ca_file: Path | None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NEWSLETTER_", "SENDGRID_", "SSL_CERT_"))
    }
    environ.update(
        {
            "NEWSLETTER_SECRET_KEY": "imap-tests",
            "NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_IMAP_PASSWORD": PASSWORD,
        }
    )
    if ca_file is not None:
        environ["SSL_CERT_FILE"] = str(ca_file)
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bounces_read_over_imap_tls_mark_exactly_the_permanent_failures(
    tmp_path: Path, database_url: str
) -> None:
    ca_file = tmp_path / "test-ca.pem"
    ca_file.write_bytes(make_certificate().cert_pem)
    messages = [path.read_bytes() for path in sorted((FIXTURES / "new").iterdir())]
    assert len(messages) == 6
    config = copy_sample_folder(tmp_path / "clinic")
    csv = tmp_path / "audience.csv"
    csv.write_text("email\n" + "\n".join(PERMANENT + NOT_GONE) + "\n", encoding="utf-8")
    with ImapTestServer({"bounces@clinic.example": PASSWORD}, messages, "Bounces") as server:
        with config.open("a", encoding="utf-8") as handle:
            handle.write(
                f'\n[bounces]\nimap_host = "{server.host}"\nimap_port = {server.port}\n'
                'imap_username = "bounces@clinic.example"\nimap_folder = "Bounces"\n'
            )
        run = {"database_url": database_url, "ca_file": ca_file}
        assert _cli(config, "check", **run).returncode == 0
        assert _cli(config, "subscribers", "import", str(csv), **run).returncode == 0

        untrusted = _cli(config, "bounces", "--json", database_url=database_url, ca_file=None)
        assert untrusted.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert server.logins == [] and server.seen == []  # nothing was said before TLS

        result = _cli(config, "bounces", "--json", **run)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {
            "messages": 6,
            "not_bounces": 2,  # the 4.4.1 delay and the auto-reply
            "bounced": PERMANENT,
            "already_left": [],
            "unknown": ["gone.gmail@gmail.com"],
        }
        assert server.logins == ["bounces@clinic.example"]
        assert server.seen == [101, 102, 103, 104, 105, 106]  # each remembered as read
        again = _cli(config, "bounces", "--json", **run)
        assert json.loads(again.stdout)["messages"] == 0

    listed = json.loads(_cli(config, "subscribers", "list", "--json", **run).stdout)
    status = {s["email"]: s["status"] for s in listed}
    assert status == {**dict.fromkeys(PERMANENT, "bounced"), **dict.fromkeys(NOT_GONE, "active")}


def test_a_wrong_imap_password_is_one_clear_error(tmp_path: Path, database_url: str) -> None:
    ca_file = tmp_path / "test-ca.pem"
    ca_file.write_bytes(make_certificate().cert_pem)
    config = copy_sample_folder(tmp_path / "clinic")
    with ImapTestServer({"bounces": "another-password"}, []) as server:
        with config.open("a", encoding="utf-8") as handle:
            handle.write(
                f'\n[bounces]\nimap_host = "{server.host}"\nimap_port = {server.port}\n'
                'imap_username = "bounces"\n'
            )
        result = _cli(config, "bounces", database_url=database_url, ca_file=ca_file)
    assert result.returncode == 1
    assert "AUTHENTICATIONFAILED" in result.stderr and "Traceback" not in result.stderr
