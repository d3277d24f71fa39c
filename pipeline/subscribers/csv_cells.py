"""Cells a spreadsheet would run as a formula: guarded on export, unguarded on import.

Names and custom fields come from the public sign-up form, so anyone can
write ``=HYPERLINK("http://evil.example", "Click")`` as their first name. An
owner who opens ``subscribers export`` in Excel, LibreOffice or Google Sheets
would have that cell run as a formula (CSV injection). So the export writes
any cell that starts like a formula (``= + - @``, or a tab or carriage return
before one) with a leading apostrophe, which every spreadsheet shows as text
and hides, as OWASP recommends.

The import takes the apostrophe off again, so an export read back (``import``
of our own file, in this tool or a fresh one) gives the very values it was
made from. The rule is one bijection: a value is guarded when it starts with
a formula character or is itself a guarded-looking value (an apostrophe before
one), so ``'=x`` is exported as ``''=x`` and read back as ``'=x``.
"""

from __future__ import annotations

#: What a spreadsheet reads as the start of a formula (OWASP's list).
FORMULA_STARTS = frozenset("=+-@\t\r")


def _needs_guard(value: str) -> bool:
    while value[:1] == "'":
        value = value[1:]
    return value[:1] in FORMULA_STARTS  # "" (nothing left) is not in it


def guard_cell(value: str) -> str:
    """``value`` as an exported cell: with a leading apostrophe if it could run as a formula."""
    return "'" + value if value and _needs_guard(value) else value


def unguard_cell(value: str) -> str:
    """An imported cell's value: :func:`guard_cell` undone (anything else as it is)."""
    if value[:1] == "'" and _needs_guard(value[1:]):
        return value[1:]
    return value
