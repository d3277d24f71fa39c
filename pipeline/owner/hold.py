"""The heads-up before a scheduled send, and its "Hold this send" link.

``[owner] heads_up`` (default 24 h) before each recurring firing that has an
article to send, and before each one-off send (``newsletter schedule SLUG
--at``), the owner gets: the article, the audience size, a link to a
preview and a signed link to a page with a "Hold this send" button. The link
carries the firing's time and the article, signed with the folder's secret
key; opening it (GET) never holds anything (link scanners open links), only
the button's POST with its CSRF token does. A held firing sends nothing, says
so in the log, ``queue`` and ``schedule list``, and stays held until
``newsletter schedule resume`` releases it; released after its time, the
article waits for the next firing. A held one-off stays pending: released
within the catch-up grace it goes out then, later it is marked missed (as
after ``schedule pause``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from pipeline import links
from pipeline.content.queue import queue_order, upcoming_firings
from pipeline.newsletter import Newsletter
from pipeline.owner.notify import Message, notify
from pipeline.schedule.triggers import recurring_trigger
from pipeline.store.holds import Hold, HoldStore
from pipeline.store.oneoffs import OneOffSend, OneOffStore, recurring_holds

log = logging.getLogger("pipeline.owner")

_SALT = "newsletter-pipeline/hold"
#: A firing this close after its time still counts as "this firing" (APScheduler's lag).
_SLACK = timedelta(minutes=1)


@dataclass(frozen=True)
class HoldClaim:
    """What a hold link names: one firing and the article it would send."""

    firing_at: datetime
    slug: str


def _serializer(newsletter: Newsletter) -> URLSafeSerializer:
    return URLSafeSerializer(newsletter.settings.secret_key.get_secret_value(), salt=_SALT)


def hold_token(newsletter: Newsletter, firing_at: datetime, slug: str) -> str:
    """The signed token of a hold link."""
    value = {"at": firing_at.astimezone(UTC).isoformat(), "slug": slug}
    return str(_serializer(newsletter).dumps(value))


def read_hold_token(newsletter: Newsletter, token: str) -> HoldClaim | None:
    """The firing a hold link names, or None for a forged or damaged link."""
    try:
        value = _serializer(newsletter).loads(token)
        return HoldClaim(datetime.fromisoformat(value["at"]), str(value["slug"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def hold_firing(newsletter: Newsletter, claim: HoldClaim) -> bool:
    """Hold the firing a link names (the page's POST); False if it was already held."""
    held = HoldStore(newsletter.sessions).hold(claim.firing_at, claim.slug, newsletter.clock())
    if held:
        log.warning(
            "firing at %s held by the owner: %s is not sent then (newsletter schedule resume)",
            claim.firing_at.astimezone(newsletter.settings.schedule.tz).isoformat(),
            claim.slug,
            extra={"slug": claim.slug, "held_firing": claim.firing_at.isoformat()},
        )
    return held


def held_now(newsletter: Newsletter) -> Hold | None:
    """The hold on the recurring firing happening now (within the catch-up grace), if any.

    A one-off's hold is not one: it holds that one-off only (:func:`one_off_hold`).
    """
    now = newsletter.clock()
    grace = newsletter.settings.schedule.catch_up_grace
    start, end = now - grace - _SLACK, now + _SLACK
    for hold in recurring_holds(newsletter.sessions):
        if start <= hold.firing_at <= end:
            return hold
    return None


def one_off_hold(newsletter: Newsletter, one: OneOffSend) -> Hold | None:
    """The hold on one pending one-off send (its heads-up's link names its time and slug)."""
    for hold in HoldStore(newsletter.sessions).in_force():
        if hold.firing_at == one.at and hold.slug == one.slug:
            return hold
    return None


def one_off_held(newsletter: Newsletter, one: OneOffSend) -> bool:
    """Whether the owner held this due one-off; said once (its note and the log), not per poll."""
    hold = one_off_hold(newsletter, one)
    if hold is None:
        return False
    note = hold_note(newsletter, hold)
    if one.note != note:
        OneOffStore(newsletter.sessions).add_note(one.id, note)
        log.warning(note, extra={"slug": one.slug, "held_firing": one.at.isoformat()})
    return True


def hold_note(newsletter: Newsletter, hold: Hold) -> str:
    """One line saying why a firing sends nothing."""
    at = hold.firing_at.astimezone(newsletter.settings.schedule.tz).isoformat()
    return (
        f"firing at {at} held by the owner ({hold.slug or 'nothing queued'}): nothing is sent"
        " then; `newsletter schedule resume` releases it"
    )


def send_heads_up(newsletter: Newsletter) -> int:
    """Heads-ups for the next recurring firing and each one-off within ``[owner] heads_up``.

    Returns how many were sent now (each firing's heads-up goes once).
    """
    now = newsletter.clock()
    settings = newsletter.settings
    queue = queue_order(newsletter.articles().articles, newsletter.ledger.sent_slugs())
    pending = OneOffStore(newsletter.sessions).pending()
    one_offs = {one.slug: one.at for one in pending}
    # A held firing needs no heads-up.
    held = {hold.firing_at for hold in recurring_holds(newsletter.sessions, pending)}
    trigger = recurring_trigger(settings.schedule)
    firings = upcoming_firings(queue, trigger, now, one_offs, 1, held)
    due = [(f.at, f.slug, False) for f in firings[:1] if f.slug is not None]
    due += [(one.at, one.slug, True) for one in pending]
    sent = 0
    for firing_at, slug, one_off in due:
        if now < firing_at and firing_at - now <= settings.owner.heads_up:
            sent += _heads_up(newsletter, firing_at, slug, one_off=one_off)
    return sent


def _heads_up(newsletter: Newsletter, firing_at: datetime, slug: str, *, one_off: bool) -> bool:
    settings = newsletter.settings
    about = firing_at.astimezone(UTC).isoformat()
    if one_off:  # its key names the article too: a recurring firing may share its time
        about = f"{about} {slug}"
    article = newsletter.article(slug)
    token = hold_token(newsletter, firing_at, slug)
    base = settings.web.base_url
    at = firing_at.astimezone(settings.schedule.tz).isoformat()
    audience = newsletter.ledger.count_audience()
    what = "a one-off send (`newsletter schedule`) sends" if one_off else "the schedule sends"
    return notify(
        newsletter,
        Message(
            kind="heads_up",
            about=about,
            subject=f"Going out {at}: {article.title}",
            lines=(
                f'At {at} {what} "{article.title}" ({slug}) to {audience} subscriber(s).',
                f"Preview: {links.hold_preview_url(base, token)}",
                f"Hold this send: {links.hold_url(base, token)}",
                "Holding pauses this one send until you release it with"
                " `newsletter schedule resume`.",
            ),
            summary=f"{slug} goes out at {at} to {audience} subscriber(s)",
            once_a_day=False,
        ),
    )
