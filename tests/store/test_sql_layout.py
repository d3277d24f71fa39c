"""All SQL lives in ``pipeline/store``: an AST scan of the package, and the one ``rowcount``.

A module outside the store that builds a statement (``select``, ``insert``,
``update``, ``delete``, ``text`` from SQLAlchemy) or runs one on a session or
connection (``execute``, ``scalar``, ``scalars``, ``exec_driver_sql``,
``session.get``/``add``...) is listed by file and line. A module that must
still hold SQL for a while is named in :data:`ALLOWED` with its reason; an
entry that no longer has anything to allow fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from pipeline.store.db import make_engine, make_sessionmaker, migrate, rowcount
from pipeline.store.models import Subscriber, SubscriberStatus

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline"
STORE = PACKAGE / "store"

#: Statement builders that only the store may import from SQLAlchemy.
STATEMENT_BUILDERS = frozenset({"select", "insert", "update", "delete", "text"})
#: Methods that run SQL, whatever object they are called on.
RUNS_SQL = frozenset({"execute", "scalar", "scalars", "exec_driver_sql", "query"})
#: ORM calls that read or write rows when called on something named ``session``.
#: (Not ``flush``: callers such as :mod:`pipeline.subscribers.commands` change
#: loaded rows' attributes inside their own transaction, and flushing those
#: changes early is transaction control, not a statement of their own.)
SESSION_IO = frozenset({"get", "add", "add_all", "delete", "merge"})

# Modules outside pipeline/store that may still hold SQL, and why (module path
# under pipeline/ -> reason). Empty: feeds/ and events/ moved theirs into the
# store during issue 13. An entry is a debt with a reason, never a way to
# silence the scan; the stale-entry test below fails once it is paid.
ALLOWED: dict[str, str] = {}


def sql_in(source: str, filename: str = "<module>") -> list[str]:
    """Each place ``source`` builds or runs SQL, as ``line: what``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in STATEMENT_BUILDERS:
                    found.append(f"{node.lineno}: imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            receiver = _name(node.func.value)
            if (
                method in RUNS_SQL
                or (method in SESSION_IO and receiver.endswith("session"))
                or (method in STATEMENT_BUILDERS and receiver in {"sa", "sqlalchemy"})
            ):
                found.append(f"{node.lineno}: calls {receiver}.{method}()")
    return sorted(found, key=lambda entry: int(entry.split(":")[0]))


def _name(node: ast.expr) -> str:
    """The dotted name of a receiver (``session``, ``self._session``), or ``?``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return "?"


def _offenders() -> dict[str, list[str]]:
    offenders: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(STORE):
            continue
        found = sql_in(path.read_text(encoding="utf-8"), str(path))
        if found:
            offenders[path.relative_to(PACKAGE).as_posix()] = found
    return offenders


def test_the_scan_finds_statements_and_session_calls() -> None:
    # The scanner itself: what it must catch, and what it must let through.
    source = (
        "from sqlalchemy import select, update\n"
        "from sqlalchemy.orm import Session\n"
        "import sqlalchemy as sa\n"
        "def f(session, sessions, connection):\n"
        "    session.execute(select(1))\n"
        "    session.get(object, 1)\n"
        "    connection.exec_driver_sql('VACUUM')\n"
        "    sa.delete(object)\n"
        "    with sessions.begin() as s:\n"
        "        s.scalar(sa.text('1'))\n"
        "    {}.update(a=1)\n"
        "    re.escape('x')\n"
    )
    assert sql_in(source) == [
        "1: imports select from sqlalchemy",
        "1: imports update from sqlalchemy",
        "5: calls session.execute()",
        "6: calls session.get()",
        "7: calls connection.exec_driver_sql()",
        "8: calls sa.delete()",
        "10: calls s.scalar()",
        "10: calls sa.text()",
    ]


def test_no_sql_outside_the_store() -> None:
    offenders = {module: found for module, found in _offenders().items() if module not in ALLOWED}
    listing = "\n".join(
        f"pipeline/{module}:{entry}" for module, found in offenders.items() for entry in found
    )
    assert not offenders, f"SQL outside pipeline/store (move it into a store module):\n{listing}"


def test_every_allowed_module_still_needs_its_entry() -> None:
    stale = sorted(set(ALLOWED) - set(_offenders()))
    assert not stale, f"no SQL left in {stale}: remove them from ALLOWED"


def test_only_the_store_db_module_reads_rowcount() -> None:
    # One definition of "rows a statement changed": pipeline.store.db.rowcount.
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == STORE / "db.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "rowcount":
                readers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            if isinstance(node, ast.FunctionDef) and "rowcount" in node.name:
                readers.append(f"{path.relative_to(PACKAGE)}:{node.lineno} def {node.name}")
    assert not readers, f"use pipeline.store.db.rowcount instead: {readers}"


def test_rowcount_counts_the_rows_a_statement_changed(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    try:
        with sessions.begin() as session:
            session.execute(
                insert(Subscriber),
                [
                    {"email": f"{name}@example.org", "status": SubscriberStatus.ACTIVE}
                    for name in ("ann", "bo", "cy")
                ],
            )
        with sessions.begin() as session:
            assert _unsubscribe(session, ["ann@example.org", "bo@example.org"]) == 2
            assert _unsubscribe(session, ["nobody@example.org"]) == 0
            left = session.scalars(
                select(Subscriber.email).where(Subscriber.status == SubscriberStatus.UNSUBSCRIBED)
            )
            assert sorted(left) == ["ann@example.org", "bo@example.org"]
    finally:
        engine.dispose()


def _unsubscribe(session: Session, emails: list[str]) -> int:
    return rowcount(
        session.execute(
            update(Subscriber)
            .where(Subscriber.email.in_(emails))
            .values(status=SubscriberStatus.UNSUBSCRIBED)
        )
    )
