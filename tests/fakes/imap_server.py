"""A small IMAP4rev1 server over TLS on 127.0.0.1, for the bounce-mail tests.

It speaks only what :class:`pipeline.bounces.mailbox.ImapReader` (through
``imaplib``) says: CAPABILITY, LOGIN, SELECT, SEARCH / UID SEARCH (ALL,
UNSEEN), FETCH / UID FETCH of ``BODY.PEEK[]``, STORE / UID STORE of flags,
NOOP and LOGOUT. The mailbox is one folder of messages kept in memory with
their UIDs and flags, so a test can see what the client marked ``\\Seen``.
The certificate is the self-signed one of :mod:`tests.fakes.smtp_server`
(made at test time for 127.0.0.1): a client must trust it to connect.

    with ImapTestServer({"bounces": "secret"}, messages) as server:
        ... connect to 127.0.0.1:server.port over TLS ...
        server.seen            # UIDs flagged \\Seen
"""

from __future__ import annotations

import re
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from tests.fakes.smtp_server import HOST, make_certificate

_COMMAND = re.compile(rb"^(\S+) (\S+)(?: (.*))?$")


@dataclass
class StoredMessage:
    uid: int
    data: bytes
    flags: set[str] = field(default_factory=set)


def _atoms(text: str) -> list[str]:
    """Arguments split on spaces, quoted strings unquoted."""
    return [
        plain or quoted.replace('\\"', '"').replace("\\\\", "\\")
        for quoted, plain in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', text)
    ]


class _Session(socketserver.StreamRequestHandler):
    server: _Server

    def send(self, line: bytes) -> None:
        self.wfile.write(line + b"\r\n")

    def handle(self) -> None:
        box = self.server.box
        selected = False
        self.send(b"* OK [CAPABILITY IMAP4rev1] test server ready")
        while line := self.rfile.readline(65536):
            match = _COMMAND.match(line.rstrip(b"\r\n"))
            if match is None:
                self.send(b"* BAD unreadable command")
                continue
            tag, verb = match.group(1), match.group(2).upper().decode()
            args = (match.group(3) or b"").decode()
            uid = verb == "UID"
            if uid:
                verb, _, args = args.partition(" ")
                verb = verb.upper()
            if verb == "LOGOUT":
                self.send(b"* BYE logging out")
                self.send(tag + b" OK LOGOUT completed")
                return
            reply = self._command(verb, args, uid, selected, box)
            if verb == "SELECT" and reply.startswith("OK"):
                selected = True
            self.send(tag + b" " + reply.encode())

    def _command(self, verb: str, args: str, uid: bool, selected: bool, box: ImapTestServer) -> str:
        if verb == "CAPABILITY":
            self.send(b"* CAPABILITY IMAP4rev1")
            return "OK CAPABILITY completed"
        if verb == "NOOP":
            return "OK NOOP completed"
        if verb == "LOGIN":
            user, password = _atoms(args)[:2]
            if box.accounts.get(user) != password:
                return "NO [AUTHENTICATIONFAILED] invalid credentials"
            box.logins.append(user)
            return "OK LOGIN completed"
        if not box.logins:
            return "BAD log in first"
        if verb == "SELECT":
            if _atoms(args)[0] != box.folder:
                return "NO no such mailbox"
            self.send(f"* {len(box.messages)} EXISTS".encode())
            self.send(b"* 0 RECENT")
            self.send(b"* FLAGS (\\Seen \\Deleted)")
            return "OK [READ-WRITE] SELECT completed"
        if not selected:
            return "BAD select a mailbox first"
        if verb == "SEARCH":
            wanted = args.upper().split()
            found = [
                (m.uid if uid else n)
                for n, m in enumerate(box.messages, 1)
                if "UNSEEN" not in wanted or "\\Seen" not in m.flags
            ]
            self.send(("* SEARCH " + " ".join(map(str, found))).rstrip().encode())
            return "OK SEARCH completed"
        if verb == "FETCH":
            which, _, _items = args.partition(" ")
            for n, message in self._pick(which, uid, box):
                head = f"* {n} FETCH (UID {message.uid} BODY[] {{{len(message.data)}}}"
                self.wfile.write(head.encode() + b"\r\n" + message.data + b")\r\n")
            return "OK FETCH completed"
        if verb == "STORE":
            which, mode, flags = args.split(" ", 2)
            names = set(flags.strip("()").split())
            for n, message in self._pick(which, uid, box):
                if mode.upper().startswith("+"):
                    message.flags |= names
                else:
                    message.flags -= names
                flag_list = " ".join(sorted(message.flags))
                self.send(f"* {n} FETCH (UID {message.uid} FLAGS ({flag_list}))".encode())
            return "OK STORE completed"
        return f"BAD {verb} is not spoken here"

    @staticmethod
    def _pick(which: str, uid: bool, box: ImapTestServer) -> list[tuple[int, StoredMessage]]:
        wanted = {int(part) for part in which.split(",") if part.isdigit()}
        return [(n, m) for n, m in enumerate(box.messages, 1) if (m.uid if uid else n) in wanted]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, box: ImapTestServer) -> None:
        self.box = box
        self._context = make_certificate().server_context()
        super().__init__((HOST, 0), _Session)

    def get_request(self) -> tuple[ssl.SSLSocket, object]:
        sock, address = super().get_request()
        sock.settimeout(10)  # a test that goes wrong must not hang
        return self._context.wrap_socket(sock, server_side=True), address


class ImapTestServer:
    """The server in a thread; ``messages`` are the folder's, UIDs from 101 up."""

    def __init__(
        self, accounts: dict[str, str], messages: list[bytes], folder: str = "INBOX"
    ) -> None:
        self.accounts = accounts
        self.folder = folder
        self.messages = [StoredMessage(101 + n, data) for n, data in enumerate(messages)]
        self.logins: list[str] = []
        self._server = _Server(self)
        self.host = HOST
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def seen(self) -> list[int]:
        """UIDs flagged ``\\Seen``."""
        return [m.uid for m in self.messages if "\\Seen" in m.flags]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
