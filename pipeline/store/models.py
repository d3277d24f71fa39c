"""SQLAlchemy models: subscribers, campaigns, the delivery ledger and what serves them
(schedule state, one-off sends, stops, events, users, owner notifications, catch-up issues).

The same models run on SQLite (the embedded default) and PostgreSQL; nothing
here is dialect-specific. Schema changes go through Alembic migrations in
``pipeline/store/migrations``.

Longer than 400 lines on purpose: this module is the one picture of the schema
that the migrations are checked against (``tests/store/test_store.py`` compares
the migrated database with this metadata). Split across modules, a table whose
module nobody imported would silently drop out of that comparison.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the one clock models default to)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC; SQLite hands back naive ones, so re-attach UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class SubscriberStatus(enum.StrEnum):
    """Where a subscriber stands; only ``active`` receives campaigns."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


#: States an import or `add` must never turn back into ``active``.
LEFT_STATUSES = frozenset(
    {SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED}
)


class CampaignStatus(enum.StrEnum):
    """A campaign's life: planned (ledger written) -> running -> done."""

    PLANNED = "planned"
    RUNNING = "running"
    DONE = "done"


class DeliveryStatus(enum.StrEnum):
    """One ledger row's state; see DESIGN.md, "Delivery guarantee"."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    SUPPRESSED = "suppressed"


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # native_enum=False: a VARCHAR + CHECK, identical on SQLite and PostgreSQL,
    # and new states need no ALTER TYPE.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    """Declarative base shared by every model."""


class Subscriber(Base):
    """A person on the list. ``email`` is stored normalized (see subscribers.py)."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus, "subscriber_status"), default=SubscriberStatus.ACTIVE
    )
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    source: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Double opt-in (web form): when and from where the person confirmed, and
    # when the last confirmation email went out (one per address per hour).
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consent_source: Mapped[str | None] = mapped_column(String(200))
    consent_ip: Mapped[str | None] = mapped_column(String(45))
    confirm_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_subscribers_status_id", "status", "id"),)


class Campaign(Base):
    """One article sent to one snapshot of the audience; at most one per article."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text, default="")
    # The issue as rendered at planning time: a resume sends exactly this.
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus, "campaign_status"), default=CampaignStatus.PLANNED
    )
    transport: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The audience, fixed at planning, its rows written as claims reach them
    # (pipeline.store.snapshot): the highest subscriber id it covers, and how
    # far claims have got. Both NULL: every row is written (campaigns planned
    # before migration 0018, and the welcome campaign).
    audience_bound: Mapped[int | None] = mapped_column(Integer)
    claimed_through: Mapped[int | None] = mapped_column(Integer)


class CampaignExclusion(Base):
    """A subscriber up to a campaign's ``audience_bound`` who was not in its audience.

    Not active when it was planned, or left out by a series part's rule.
    Kept until every person of the audience has a row (pipeline.store.snapshot).
    """

    __tablename__ = "campaign_exclusions"

    # No foreign keys, as on deliveries (pipeline.store.ledger_links): erasure
    # removes a subscriber's exclusions itself.
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class WaitingFor(enum.StrEnum):
    """What a campaign stopped with rows pending waits for."""

    RETRY = "retry"  # the scheduler's next try, at ``retry_at``
    OWNER = "owner"  # a person: the provider refused the credentials or the sender


class CampaignStop(Base):
    """Why a campaign's last run stopped with rows pending, and what happens next.

    At most one per campaign; removed when a run leaves nothing pending or the
    owner sends by hand. Kept in the database so that a scheduler restart keeps
    the backoff (see :mod:`pipeline.store.stops`).
    """

    __tablename__ = "campaign_stops"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(Text)
    waiting_for: Mapped[WaitingFor] = mapped_column(_enum(WaitingFor, "waiting_for"))
    stopped_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # NULL while waiting for the owner, and while a retry is under way.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Stops in a row since the last run that finished or the owner's own send.
    retries: Mapped[int] = mapped_column(Integer, default=0)


class CampaignBrake(Base):
    """The numbers the owner saw when resuming a campaign the bounce brake stopped.

    From then on the brake judges only what came after (see
    :mod:`pipeline.sending.brake`); set again at each such resume.
    """

    __tablename__ = "campaign_brakes"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    sends: Mapped[int] = mapped_column(Integer)
    bounced: Mapped[int] = mapped_column(Integer)
    complained: Mapped[int] = mapped_column(Integer)
    released_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Delivery(Base):
    """The ledger: one row per (campaign, subscriber), never sent twice."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No FOREIGN KEY on either id (migration 0016): why, and how the writers
    # keep the links instead, is pipeline.store.ledger_links.
    campaign_id: Mapped[int] = mapped_column(Integer)
    # NULL once the subscriber is forgotten (privacy erasure); the row keeps the count.
    subscriber_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who holds the claim (host, pid, boot id, PID namespace, nonce: see
    # pipeline.sending.senders), so a resume in the same PID namespace can tell a
    # crashed sender (its rows are in doubt) from a live one.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)
    # Why a failed row failed, as data ("batch", "retries", "recipient"...; see
    # transports.base.FailureKind): `send --retry-failed` decides by it. Plain
    # text, no CHECK: a new kind needs no migration.
    failure_kind: Mapped[str | None] = mapped_column(String(16))
    # NULL: a live row (the campaign's snapshot, or --include-new). Set: a
    # catch-up send of this article, planned for that send slot (see
    # pipeline.store.catch_up). Same states, same claims, same crash rules.
    catch_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # One campaign per article, so this is also "each article reaches each
        # person at most once, ever": live, caught up, --include-new or resent.
        UniqueConstraint("campaign_id", "subscriber_id", name="uq_deliveries_campaign_subscriber"),
        Index("ix_deliveries_subscriber", "subscriber_id"),
        # Partial, and on columns an outcome never changes (migration 0019): the
        # write of a row's outcome then touches no index, and PostgreSQL keeps
        # the new version on the row's own page (a HOT update; the table's
        # fillfactor leaves the room). An index naming ``status`` would forbid
        # that. Pending rows are the ones never claimed since they last became
        # pending (the CHECK below); rows in flight are found through
        # ``in_flight_claims``, their rows by token.
        Index(
            "ix_deliveries_pending",
            "campaign_id",
            "id",
            sqlite_where=text("claimed_at IS NULL"),
            postgresql_where=text("claimed_at IS NULL"),
        ),
        Index(
            "ix_deliveries_claim_token",
            "campaign_id",
            "claim_token",
            sqlite_where=text("claim_token IS NOT NULL"),
            postgresql_where=text("claim_token IS NOT NULL"),
        ),
        # What keeps a pending row in ix_deliveries_pending: every write that makes
        # a row pending clears its claim, and one that forgot would fail here
        # rather than leave the row where no claim looks.
        CheckConstraint(
            "status <> 'pending' OR claimed_at IS NULL", name="ck_deliveries_pending_unclaimed"
        ),
        # Catch-up rows only (migration 0017): who had one on a given day.
        Index(
            "ix_deliveries_catch_up",
            "catch_up_at",
            "subscriber_id",
            sqlite_where=text("catch_up_at IS NOT NULL"),
            postgresql_where=text("catch_up_at IS NOT NULL"),
        ),
    )


class InFlightClaim(Base):
    """A claim whose rows may still be ``sending``: its token, campaign, holder and lease.

    Written in the transaction that makes its rows ``sending``, gone in the one
    that settles the last of them (an outcome, given back, expired as
    uncertain). No index on ``deliveries`` names ``status`` (see its indexes),
    so "what is in flight for this campaign?" is answered here, one row per
    batch, and a lease renewal rewrites this row instead of the batch's.
    """

    __tablename__ = "in_flight_claims"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    claimed_by: Mapped[str] = mapped_column(String(200))
    # Renewed every quarter lease while the claim is out: older than a lease, it is stale.
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_in_flight_claims_campaign", "campaign_id"),)


class CatchUpIssue(Base):
    """A campaign's issue as a catch-up reader gets it on one send slot.

    The series navigation is the reader's ("Next: ... in your inbox on Thu
    3 Dec"); everything else is the live issue. Stored before the rows it
    serves, like the campaign's own issue, so a resume sends exactly this.
    """

    __tablename__ = "catch_up_issues"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)


class ScheduledSendStatus(enum.StrEnum):
    """A one-off send's life: pending -> fired, or cancelled, or missed (beyond the grace)."""

    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"
    MISSED = "missed"


class ScheduledSend(Base):
    """A one-off send (``newsletter schedule SLUG --at ...``); at most one per article."""

    __tablename__ = "scheduled_sends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[ScheduledSendStatus] = mapped_column(
        _enum(ScheduledSendStatus, "scheduled_send_status"), default=ScheduledSendStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why it was missed, or what went wrong when it fired.
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_scheduled_sends_status_at", "status", "at"),)


class SchedulerState(Base):
    """One row (id 1): the pause switch and the lease of the scheduler allowed to fire."""

    __tablename__ = "scheduler_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "host:pid:uuid" of the scheduler holding the lease, and until when it holds it.
    leader: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FeedSource(Base):
    """A feed ``import-feed`` has fetched: its HTTP validators for the next conditional GET."""

    __tablename__ = "feed_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The address as the writer typed it: redirects may move, the writer's name for it does not.
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    etag: Mapped[str | None] = mapped_column(String(1000))
    last_modified: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FeedEntry(Base):
    """One feed entry imported as an article, by its key (guid, else link, else a hash).

    Kept beside the article's ``feed_key`` so that an article a writer deleted
    is not brought back by the next import.
    """

    __tablename__ = "feed_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(500), unique=True)
    slug: Mapped[str] = mapped_column(String(200))
    feed_url: Mapped[str] = mapped_column(String(2000))
    content_hash: Mapped[str] = mapped_column(String(100))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """One provider's delivery event (SendGrid's Event Webhook), stored once per id.

    ``provider_event_id`` is the provider's id (SendGrid's ``sg_event_id``),
    unique across providers; ``event`` is the provider's own event name.

    A forgotten subscriber's events go with them, and so do events for their
    address stored with ``NULL`` (it was not on the list then): see
    :func:`pipeline.store.erasure.erase_rows`. SendGrid's ``ip`` and
    ``useragent`` are not kept in ``raw``.
    """

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), default="sendgrid", server_default="sendgrid")
    provider_event_id: Mapped[str] = mapped_column(String(100), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(320))
    campaign_slug: Mapped[str | None] = mapped_column(String(200))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(Integer)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_webhook_events_campaign_event", "campaign_id", "event"),)


class ConfirmationOutbox(Base):
    """A sign-up waiting for the background sender (see :mod:`pipeline.store.confirmations`).

    The form writes only this row, whoever the address belongs to; the sender
    decides whether a confirmation email is due, sends it and retries it.
    Once reserved, the row names its subscriber and goes with them if they
    are forgotten (``ON DELETE CASCADE``).
    """

    __tablename__ = "confirmation_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Due when this is past; a sender taking the row moves it ahead (a lease).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    #: The subscriber's ``confirm_sent_at`` this row reserved (its link must carry a later stamp).
    reserved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_confirmation_outbox_next_attempt_at", "next_attempt_at"),)


class ErasedAddress(Base):
    """An address erased at the person's request (``subscribers forget``), as a keyed digest.

    ``digest`` is HMAC-SHA256 of the normalized address under the secret key
    (:mod:`pipeline.subscribers.erasure`): imports, ``subscribers add`` and webhook events
    are refused by it, and it goes when the person confirms a new sign-up.
    """

    __tablename__ = "erased_addresses"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    """A dashboard account (``newsletter users add``); see :mod:`pipeline.store.users`.

    ``session_version`` is part of every signed session cookie: logging out
    bumps it, so a copied cookie stops working too (sessions are not stored).
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UsedSetupLink(Base):
    """A first-run setup link that created an account: each link works once."""

    __tablename__ = "used_setup_links"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Notification(Base):
    """One message to the owner (``[owner] email``): a receipt, an alert or a heads-up.

    Outside the subscriber ledger. The unique (kind, subject_key, day) is the
    "each kind at most once a day per subject" rule: a row is reserved before
    the message goes, so a restart (or a second scheduler) the same day finds
    it and sends nothing (see :mod:`pipeline.store.notifications`).
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # What the message is about: a campaign slug, a firing's time, a scheduler.
    subject_key: Mapped[str] = mapped_column(String(300))
    # The UTC day (YYYY-MM-DD) it counts against; "" for once ever (a receipt).
    day: Mapped[str] = mapped_column(String(10))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recipients: Mapped[str] = mapped_column(Text)  # comma-separated addresses
    subject: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("kind", "subject_key", "day", name="uq_notifications_once_a_day"),
        Index("ix_notifications_sent_at", "sent_at"),
    )


class HeldFiring(Base):
    """A recurring firing the owner held ("Hold this send"); nothing goes out at it.

    Released (``released_at`` set) by ``newsletter schedule resume``.
    """

    __tablename__ = "held_firings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firing_at: Mapped[datetime] = mapped_column(UTCDateTime(), unique=True)
    slug: Mapped[str | None] = mapped_column(String(200))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
