"""Importing a subscriber CSV: columns, merging, bad rows by line, statuses, chunks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pipeline.errors import PipelineError
from pipeline.store.models import DeliveryStatus, Subscriber, SubscriberStatus
from pipeline.subscribers import (
    CsvError,
    SubscriberRecord,
    add_subscriber,
    import_csv,
    remove_subscriber,
)
from tests.subscribers.lists import (
    Sessions,
    count,
    deliveries,
    everyone,
    ledger,
    selects_on_subscribers,
    write,
)

# -- CSV import --------------------------------------------------------------------------


def test_import_adds_new_subscribers_as_active(tmp_path: Path, sessions: Sessions) -> None:
    path = write(
        tmp_path, "email,first_name,last_name\nann@example.com,Ann,Lee\nbo@example.com,,\n"
    )
    report = import_csv(sessions, path)
    assert (report.added, report.updated, report.unchanged, report.kept_left) == (2, 0, 0, 0)
    assert report.problems == ()
    assert report.total_rows == 2
    ann = everyone(sessions)["ann@example.com"]
    assert ann == SubscriberRecord("ann@example.com", "Ann", "Lee", SubscriberStatus.ACTIVE)
    with sessions() as session:
        assert session.scalars(select(Subscriber.source)).all() == ["import", "import"]


def test_a_utf8_bom_is_not_part_of_the_first_column(tmp_path: Path, sessions: Sessions) -> None:
    path = write(tmp_path, "email,first_name\r\nzoe@example.com,Zoë\r\n", bom=True)
    assert import_csv(sessions, path).added == 1
    assert everyone(sessions)["zoe@example.com"].first_name == "Zoë"


def test_semicolon_delimited_files_from_european_excel(tmp_path: Path, sessions: Sessions) -> None:
    text = 'email;first_name;last_name;tags\nann@example.com;Ann;Lee, Jr.;"vip;new"\n'
    report = import_csv(sessions, write(tmp_path, text, bom=True))
    assert report.added == 1
    ann = everyone(sessions)["ann@example.com"]
    assert (ann.last_name, ann.tags) == ("Lee, Jr.", ("vip", "new"))


def test_quoted_commas_stay_inside_the_value(tmp_path: Path, sessions: Sessions) -> None:
    path = write(tmp_path, 'email,first_name,last_name\nbob@example.com,"Bob","Smith, Jr."\n')
    import_csv(sessions, path)
    assert everyone(sessions)["bob@example.com"].last_name == "Smith, Jr."


def test_bad_rows_are_reported_by_physical_line_and_the_rest_import(
    tmp_path: Path, sessions: Sessions
) -> None:
    text = (
        "email,first_name,notes\n"  # 1
        "ann@example.com,Ann,\n"  # 2
        "\n"  # 3: blank, skipped silently
        "not-an-address,Bob,\n"  # 4
        'cy@example.com,Cy,"two\n'  # 5: a quoted value over two lines
        'lines"\n'  # 6
        ",Dee,\n"  # 7: no address
        "  \n"  # 8
        "eve@example.com,Eve,x,extra\n"  # 9: one value too many
        "fay@example.com,Fay,,,\n"  # 10: empty extra cells are harmless
    )
    path = write(tmp_path, text)
    report = import_csv(sessions, path)
    assert report.added == 3
    assert [(p.line, p.path) for p in report.problems] == [(4, path), (7, path), (9, path)]
    assert str(report.problems[0]).startswith(f"{path}:4: invalid email address 'not-an-address'")
    assert "no email address" in report.problems[1].message
    assert "4 values but the header has 3 columns" in report.problems[2].message
    assert set(everyone(sessions)) == {"ann@example.com", "cy@example.com", "fay@example.com"}
    assert everyone(sessions)["cy@example.com"].fields == {"notes": "two\nlines"}


def test_a_record_spanning_lines_is_reported_at_its_first_line(
    tmp_path: Path, sessions: Sessions
) -> None:
    text = 'email,notes\nann@example.com,"a\nb"\n"bad\naddress",x\n'
    report = import_csv(sessions, write(tmp_path, text))
    assert [p.line for p in report.problems] == [4]


def test_stray_quotes_are_reported_not_swallowed(tmp_path: Path, sessions: Sessions) -> None:
    text = (
        "email,first_name\n"  # 1
        'ann@example.com,Ann "Annie"\n'  # 2: a quote inside a value is just a character
        'bo@example.com,"Bo" x\n'  # 3: a quoted value with text after it
        "cy@example.com,Cy\n"  # 4
        'dee@example.com,"Dee\n'  # 5: never closed: would hide the rows below
        "eve@example.com,Eve\n"  # 6
    )
    report = import_csv(sessions, write(tmp_path, text))
    assert [p.line for p in report.problems] == [3, 5]
    assert "lines 5 to 6 were skipped" in report.problems[1].message
    assert set(everyone(sessions)) == {"ann@example.com", "cy@example.com"}
    assert everyone(sessions)["ann@example.com"].first_name == 'Ann "Annie"'


def test_duplicate_addresses_merge_and_count_once(tmp_path: Path, sessions: Sessions) -> None:
    text = (
        "email,first_name,last_name,tags,phone\n"
        "ann@example.com,Ann,,vip,111\n"
        "bo@example.com,Bo,,,\n"
        "ANN@example.com,,Lee,new,222\n"
    )
    report = import_csv(sessions, write(tmp_path, text))
    assert (report.added, report.total_rows) == (2, 2)
    ann = everyone(sessions)["ann@example.com"]
    assert (ann.first_name, ann.last_name) == ("Ann", "Lee")
    assert ann.tags == ("vip", "new")
    assert ann.fields == {"phone": "222"}


def test_duplicates_in_different_chunks_also_count_once(tmp_path: Path, sessions: Sessions) -> None:
    text = "email,first_name,last_name\na@example.com,Ann,\nb@example.com,,\na@example.com,,Lee\n"
    report = import_csv(sessions, write(tmp_path, text), chunk_size=2)
    assert (report.added, report.updated, report.total_rows) == (2, 0, 2)
    ann = everyone(sessions)["a@example.com"]
    assert (ann.first_name, ann.last_name) == ("Ann", "Lee")


def test_tags_are_split_trimmed_deduplicated_and_merged(tmp_path: Path, sessions: Sessions) -> None:
    import_csv(sessions, write(tmp_path, 'email,tags\nann@example.com," vip ; new;;vip"\n'))
    assert everyone(sessions)["ann@example.com"].tags == ("vip", "new")
    report = import_csv(
        sessions, write(tmp_path, "email,tags\nann@example.com,hips;new\n", "2.csv")
    )
    assert report.updated == 1
    assert everyone(sessions)["ann@example.com"].tags == ("vip", "new", "hips")


def test_other_columns_become_custom_fields(tmp_path: Path, sessions: Sessions) -> None:
    first = "email,Phone,Clinic\nann@example.com,0400 000 000,North\n"
    import_csv(sessions, write(tmp_path, first))
    # A later file merges over them; an empty cell never erases a value.
    second = "email,Phone,Clinic,Birthday\nann@example.com,,South,03-14\n"
    import_csv(sessions, write(tmp_path, second, "2.csv"))
    fields = everyone(sessions)["ann@example.com"].fields
    assert fields == {"Phone": "0400 000 000", "Clinic": "South", "Birthday": "03-14"}


def test_header_names_ignore_case_and_spacing(tmp_path: Path, sessions: Sessions) -> None:
    text = " Email Address ,First Name,  LAST_NAME ,TAGS\nann@example.com,Ann,Lee,vip\n"
    import_csv(sessions, write(tmp_path, text))
    ann = everyone(sessions)["ann@example.com"]
    assert (ann.first_name, ann.last_name, ann.tags, dict(ann.fields)) == (
        "Ann",
        "Lee",
        ("vip",),
        {},
    )


def test_a_file_without_an_email_column_is_refused(tmp_path: Path, sessions: Sessions) -> None:
    path = write(tmp_path, "name,phone\nAnn,123\n")
    with pytest.raises(CsvError, match=r"list\.csv:1: no 'email' column") as caught:
        import_csv(sessions, path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, PipelineError)
    assert count(sessions) == 0


def test_a_missing_or_empty_file_is_a_clear_error(tmp_path: Path, sessions: Sessions) -> None:
    with pytest.raises(CsvError, match=r"nope\.csv: cannot read the file"):
        import_csv(sessions, tmp_path / "nope.csv")
    with pytest.raises(CsvError, match="empty file"):
        import_csv(sessions, write(tmp_path, "\n\n", "empty.csv"))


def test_a_file_that_is_not_utf8_is_refused_before_anything_is_written(
    tmp_path: Path, sessions: Sessions
) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("email;first_name\na@example.com;Ann\nb@example.com;Jürgen\n".encode("cp1252"))
    with pytest.raises(CsvError, match=r"excel\.csv:3: the file is not UTF-8"):
        import_csv(sessions, path)
    assert count(sessions) == 0


def test_an_address_that_left_is_never_reactivated(tmp_path: Path, sessions: Sessions) -> None:
    add_subscriber(sessions, "ann@example.com", first_name="Ann")
    remove_subscriber(sessions, "ann@example.com")
    text = "email,first_name,tags,status\nann@example.com,Annie,vip,active\n"
    report = import_csv(sessions, write(tmp_path, text))
    assert (report.kept_left, report.added, report.updated) == (1, 0, 0)
    ann = everyone(sessions)["ann@example.com"]
    assert (ann.status, ann.first_name, ann.tags) == (SubscriberStatus.UNSUBSCRIBED, "Ann", ())


def test_a_status_column_can_only_make_people_leave(tmp_path: Path, sessions: Sessions) -> None:
    add_subscriber(sessions, "ann@example.com")
    add_subscriber(sessions, "bo@example.com")
    ledger(sessions, ("ann@example.com", DeliveryStatus.PENDING))
    text = (
        "email,status\n"
        "ann@example.com,unsubscribed\n"  # honoured, and her pending row is suppressed
        "cy@example.com,bounced\n"  # recorded as left, so no later import adds them
        "bo@example.com,pending\n"  # no downgrade of someone active
        "dee@example.com,Customer\n"  # not a status we know: a problem, not a guess
    )
    report = import_csv(sessions, write(tmp_path, text))
    assert (report.updated, report.added, report.unchanged) == (1, 1, 1)
    assert [p.line for p in report.problems] == [5]
    statuses = {e: r.status for e, r in everyone(sessions).items()}
    assert statuses == {
        "ann@example.com": SubscriberStatus.UNSUBSCRIBED,
        "bo@example.com": SubscriberStatus.ACTIVE,
        "cy@example.com": SubscriberStatus.BOUNCED,
    }
    assert [status for _, status, _ in deliveries(sessions)] == [DeliveryStatus.SUPPRESSED]


def test_importing_the_same_file_again_changes_nothing(tmp_path: Path, sessions: Sessions) -> None:
    text = "email,first_name,tags,phone\nann@example.com,Ann,vip;new,1\nbo@example.com,Bo,,\n"
    path = write(tmp_path, text)
    import_csv(sessions, path)
    before = everyone(sessions)
    report = import_csv(sessions, path)
    assert (report.added, report.updated, report.unchanged) == (0, 0, 2)
    assert everyone(sessions) == before


def test_each_chunk_looks_up_its_addresses_in_one_query(
    tmp_path: Path, engine: Engine, sessions: Sessions
) -> None:
    rows = "".join(f"p{i}@example.com\n" for i in range(5))
    path = write(tmp_path, "email\n" + rows)
    seen = selects_on_subscribers(engine)
    progress: list[int] = []
    report = import_csv(sessions, path, chunk_size=2, progress=progress.append)
    assert report.added == 5
    assert len(seen) == 3  # chunks of 2, 2 and 1
    assert all(" IN " in statement for statement in seen)
    assert progress[-1] == 5
    assert progress == sorted(progress)


def test_ten_thousand_rows_import(tmp_path: Path, sessions: Sessions) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,last_name,tags,member_no\n")
        for i in range(10_000):
            out.write(f"person{i}@example.com,First{i},Last {i},tag{i % 7},{i}\n")
    report = import_csv(sessions, path)
    assert (report.added, report.problems) == (10_000, ())
    assert count(sessions) == 10_000
    with sessions() as session:
        last = session.scalar(
            select(Subscriber).where(Subscriber.email == "person9999@example.com")
        )
        assert last is not None
        assert (last.last_name, last.tags, last.fields) == (
            "Last 9999",
            ["tag3"],
            {"member_no": "9999"},
        )
