"""Managing the list: CSV import and export, add, remove, forget, listing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import InvalidAddressError, NotFoundError, PipelineError
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import Campaign, Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from pipeline.subscribers import (
    CsvError,
    SubscriberErasedError,
    SubscriberLeftError,
    SubscriberRecord,
    add_subscriber,
    export_csv,
    forget_subscriber,
    import_csv,
    iter_subscribers,
    normalize_email,
    remove_subscriber,
    to_json_dict,
)

Sessions = sessionmaker[Session]

#: The secret key erased addresses are hashed with.
KEY = "subscribers-test-secret"


def _database(path: Path) -> tuple[Engine, Sessions]:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return engine, make_sessionmaker(engine)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database in a file of its own."""
    engine, _ = _database(tmp_path / "t.db")
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> Sessions:
    """The session factory the functions under test take."""
    return make_sessionmaker(engine)


def write(tmp_path: Path, text: str, name: str = "list.csv", *, bom: bool = False) -> Path:
    """A CSV file with exactly these bytes (UTF-8, optionally with Excel's BOM)."""
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def everyone(sessions: Sessions) -> dict[str, SubscriberRecord]:
    """Every subscriber by address."""
    return {record.email: record for record in iter_subscribers(sessions)}


def count(sessions: Sessions) -> int:
    """How many subscriber rows exist."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Subscriber)) or 0)


def selects_on_subscribers(engine: Engine) -> list[str]:
    """Collects every SELECT on the subscribers table run from now on."""
    seen: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM subscribers" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    return seen


def ledger(sessions: Sessions, *subscriber_statuses: tuple[str, DeliveryStatus]) -> int:
    """A campaign with one delivery row per (address, status); returns the campaign id."""
    with sessions.begin() as session:
        campaign = Campaign(
            slug="hip-pain", subject="Hip pain", html="<p>x</p>", text="x", transport="outbox"
        )
        session.add(campaign)
        session.flush()
        for email, status in subscriber_statuses:
            subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email == email))
            session.add(
                Delivery(campaign_id=campaign.id, subscriber_id=subscriber_id, status=status)
            )
        return campaign.id


def ledger_second_campaign(session: Session) -> int:
    """Another campaign, for a row in a second ledger."""
    campaign = Campaign(slug="knee-pain", subject="Knee", html="x", text="x", transport="outbox")
    session.add(campaign)
    session.flush()
    return campaign.id


def deliveries(sessions: Sessions) -> list[tuple[int | None, DeliveryStatus, str | None]]:
    """(subscriber_id, status, error) of every ledger row, in id order."""
    with sessions() as session:
        rows = session.execute(
            select(Delivery.subscriber_id, Delivery.status, Delivery.error).order_by(Delivery.id)
        )
        return [(s, DeliveryStatus(st), e) for s, st, e in rows]


# -- addresses -------------------------------------------------------------------------


def test_addresses_are_stored_lower_case_and_trimmed() -> None:
    assert normalize_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"


@pytest.mark.parametrize("raw", ["", "ann", "ann@", "ann@example", "ann lee@example.com"])
def test_malformed_addresses_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidAddressError, match="invalid email address"):
        normalize_email(raw)


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


# -- one subscriber at a time ---------------------------------------------------------------


def test_add_creates_an_active_subscriber(sessions: Sessions) -> None:
    record = add_subscriber(sessions, " Ann@Example.com", first_name="Ann", tags=["vip", " vip "])
    assert record == SubscriberRecord(
        "ann@example.com", "Ann", None, SubscriberStatus.ACTIVE, ("vip",)
    )
    with sessions() as session:
        assert session.scalar(select(Subscriber.source)) == "cli"


def test_add_updates_a_current_subscriber(sessions: Sessions) -> None:
    add_subscriber(sessions, "ann@example.com", first_name="Ann", tags=["vip"])
    record = add_subscriber(sessions, "ANN@example.com", last_name="Lee", tags=["new"])
    assert (record.first_name, record.last_name, record.tags) == ("Ann", "Lee", ("vip", "new"))
    assert count(sessions) == 1


def test_add_keeps_a_pending_subscriber_pending(sessions: Sessions) -> None:
    with sessions.begin() as session:
        session.add(Subscriber(email="pat@example.com", status=SubscriberStatus.PENDING))
    record = add_subscriber(sessions, "pat@example.com", first_name="Pat")
    assert (record.status, record.first_name) == (SubscriberStatus.PENDING, "Pat")


@pytest.mark.parametrize(
    "status", [SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED]
)
def test_add_refuses_someone_who_left(sessions: Sessions, status: SubscriberStatus) -> None:
    with sessions.begin() as session:
        session.add(Subscriber(email="ann@example.com", status=status))
    with pytest.raises(SubscriberLeftError, match="subscribe again themselves"):
        add_subscriber(sessions, "ann@example.com", first_name="Ann")
    assert everyone(sessions)["ann@example.com"].status == status


def test_add_refuses_a_malformed_address(sessions: Sessions) -> None:
    with pytest.raises(InvalidAddressError):
        add_subscriber(sessions, "ann.example.com")


def test_remove_unsubscribes_keeps_the_row_and_suppresses_pending_rows(
    sessions: Sessions,
) -> None:
    add_subscriber(sessions, "ann@example.com")
    add_subscriber(sessions, "bo@example.com")
    ledger(
        sessions,
        ("ann@example.com", DeliveryStatus.PENDING),
        ("bo@example.com", DeliveryStatus.PENDING),
    )
    remove_subscriber(sessions, "Ann@Example.com")
    with sessions() as session:
        ann = session.scalar(select(Subscriber).where(Subscriber.email == "ann@example.com"))
        assert ann is not None
        assert ann.status == SubscriberStatus.UNSUBSCRIBED
        assert ann.unsubscribed_at is not None
        ann_id = ann.id
    rows = deliveries(sessions)
    assert [(s == ann_id, status) for s, status, _ in rows] == [
        (True, DeliveryStatus.SUPPRESSED),
        (False, DeliveryStatus.PENDING),
    ]


def test_remove_leaves_rows_already_sent_alone(sessions: Sessions) -> None:
    add_subscriber(sessions, "ann@example.com")
    ledger(sessions, ("ann@example.com", DeliveryStatus.SENT))
    remove_subscriber(sessions, "ann@example.com")
    assert [status for _, status, _ in deliveries(sessions)] == [DeliveryStatus.SENT]


def test_remove_of_an_unknown_address_is_not_found(sessions: Sessions) -> None:
    with pytest.raises(NotFoundError, match=r"nobody@example\.com"):
        remove_subscriber(sessions, "nobody@example.com")


def test_forget_erases_the_person_but_keeps_the_ledger_counts(sessions: Sessions) -> None:
    add_subscriber(sessions, "ann@example.com", first_name="Ann")
    add_subscriber(sessions, "bo@example.com")
    campaign_id = ledger(
        sessions,
        ("ann@example.com", DeliveryStatus.PENDING),
        ("bo@example.com", DeliveryStatus.PENDING),
    )
    with sessions.begin() as session:
        session.add(
            Delivery(
                campaign_id=ledger_second_campaign(session),
                subscriber_id=session.scalar(
                    select(Subscriber.id).where(Subscriber.email == "ann@example.com")
                ),
                status=DeliveryStatus.FAILED,
                error="550 ann@example.com: no such user",
            )
        )
    forget_subscriber(sessions, "ann@example.com", secret_key=KEY)
    assert set(everyone(sessions)) == {"bo@example.com"}
    rows = deliveries(sessions)
    assert len(rows) == 3
    assert rows[0] == (None, DeliveryStatus.SUPPRESSED, None)
    assert rows[1][1] == DeliveryStatus.PENDING
    assert rows[2][0] is None
    assert rows[2][1] == DeliveryStatus.FAILED
    assert "ann@example.com" not in (rows[2][2] or "")
    with sessions() as session:
        assert session.get(Campaign, campaign_id) is not None


def test_forget_of_an_unknown_address_is_not_found(sessions: Sessions) -> None:
    with pytest.raises(NotFoundError):
        forget_subscriber(sessions, "nobody@example.com", secret_key=KEY)


def test_a_forgotten_address_is_not_added_again(sessions: Sessions) -> None:
    # Only the person's own double opt-in brings it back (tests/subscribers/test_erasure.py).
    add_subscriber(sessions, "ann@example.com", first_name="Ann")
    remove_subscriber(sessions, "ann@example.com")
    forget_subscriber(sessions, "ann@example.com", secret_key=KEY)
    with pytest.raises(SubscriberErasedError, match="erased at the person's request"):
        add_subscriber(sessions, "Ann@Example.com", secret_key=KEY)
    assert count(sessions) == 0


# -- listing and export ----------------------------------------------------------------------


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

    _, fresh = _database(tmp_path / "fresh.db")
    report = import_csv(fresh, exported)
    assert (report.added, report.problems) == (3, ())
    original = [to_json_dict(r) for r in iter_subscribers(sessions)]
    assert [to_json_dict(r) for r in iter_subscribers(fresh)] == original
    # And importing the export into the database it came from changes nothing.
    again = import_csv(sessions, exported)
    assert (again.unchanged, again.kept_left, again.updated) == (2, 1, 0)


def test_international_domain_is_stored_in_ascii_form() -> None:
    from pipeline.subscribers import normalize_email

    assert normalize_email("Ann@Exämple.com") == "ann@xn--exmple-cua.com"
