"""``newsletter schedule``: one-off sends, the recurring schedule's next firings, pause.

    newsletter schedule SLUG --at "YYYY-MM-DD HH:MM[:SS]"   one-off send (clinic time)
    newsletter schedule list [--json] [--count N]            what fires next (and catch-up sends)
    newsletter schedule cancel SLUG                          drop a pending one-off
    newsletter schedule pause | resume                       hold / release every firing

Everything is written to the database; the running scheduler (another process)
reads it at firing time, so nothing here needs the scheduler to be running.
Times are shown as ISO 8601 in the clinic's timezone with their UTC offset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from typer.core import TyperGroup

from pipeline.config import find_config, load_settings
from pipeline.content.queue import Firing, queue_order, upcoming_firings
from pipeline.errors import PipelineError
from pipeline.newsletter import Newsletter
from pipeline.owner.hold import hold_note
from pipeline.schedule.catch_up import grace_seconds
from pipeline.schedule.catch_up_outlook import OUTLOOK_DAYS, CatchUpDue, catch_up_outlook
from pipeline.schedule.triggers import recurring_trigger
from pipeline.sending.brake import Brake
from pipeline.store.holds import Hold, HoldStore
from pipeline.store.oneoffs import OneOffSend, OneOffStore, recurring_holds
from pipeline.store.scheduler_state import SchedulerStateStore, SchedulerStatus
from pipeline.store.stops import StopStore

_AT_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
_ADD = "add"


class _SlugOrCommand(TyperGroup):
    """``schedule list|cancel|pause|resume``, and ``schedule SLUG --at ...`` for any other word.

    A click group cannot take an optional positional argument before its
    subcommands (``list`` would be read as a slug), so a first word that is
    not a subcommand is routed to the hidden ``add`` command instead.
    """

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """Route ``SLUG --at ...`` to ``add``; leave real subcommands alone."""
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = [_ADD, *args]
        return super().resolve_command(ctx, args)


schedule_app = typer.Typer(
    cls=_SlugOrCommand,
    help=(
        "One-off sends and the recurring schedule. Set a one-off with: newsletter schedule SLUG"
        ' --at "YYYY-MM-DD HH:MM[:SS]" (clinic timezone).'
    ),
    no_args_is_help=True,
)


def parse_local_time(text: str, tz: ZoneInfo, label: str = "--at") -> datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` on the clinic's clock, as an aware datetime.

    ``label`` names the input in errors (the CLI's option, the dashboard's field).

    A time the clocks skip (the spring-forward gap) is an error; a time they
    repeat (falling back) means the first of the two.
    """
    cleaned = " ".join(text.strip().replace("T", " ", 1).split())
    for fmt in _AT_FORMATS:
        try:
            naive = datetime.strptime(cleaned, fmt)
            break
        except ValueError:
            continue
    else:
        raise PipelineError(
            f'{label} {text!r}: expected "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS"'
            f" ({tz.key} time)"
        )
    local = naive.replace(tzinfo=tz)
    if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise PipelineError(
            f"{label} {text!r}: {naive:%Y-%m-%d %H:%M:%S} does not exist in {tz.key}"
            " (the clocks go forward then); pick another time"
        )
    return local


@dataclass(frozen=True)
class ScheduleListing:
    """What ``schedule list`` shows."""

    cron: str
    timezone: str
    catch_up_grace_seconds: int
    state: SchedulerStatus
    scheduler_running: bool
    one_offs: list[OneOffSend]
    firings: list[Firing]
    #: Firings the owner held from a heads-up (nothing is sent at them).
    holds: list[Hold] = field(default_factory=list)
    #: Catch-up sends the next days' passes would plan (no live issue simulated).
    catch_up: list[CatchUpDue] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The shape of ``schedule list --json``."""
        tz = ZoneInfo(self.timezone)

        def local(moment: datetime | None) -> str | None:
            return moment.astimezone(tz).isoformat() if moment else None

        held = {h.firing_at for h in self.holds}
        one_offs = {(one.at, one.slug) for one in self.one_offs}

        return {
            "cron": self.cron,
            "timezone": self.timezone,
            "catch_up_grace_seconds": self.catch_up_grace_seconds,
            "paused": self.state.paused,
            "paused_at": local(self.state.paused_at),
            "scheduler": {
                "running": self.scheduler_running,
                "leader": self.state.leader if self.scheduler_running else None,
                "lease_expires_at": local(self.state.lease_expires_at)
                if self.scheduler_running
                else None,
            },
            "one_offs": [
                {"slug": one.slug, "at": local(one.at), "status": one.status.value}
                for one in self.one_offs
            ],
            "next_firings": [
                {"at": local(f.at), "slug": f.slug, "held": f.at in held} for f in self.firings
            ],
            "held_firings": [
                {
                    "at": local(h.firing_at),
                    "slug": h.slug,
                    "held_at": local(h.held_at),
                    "one_off": (h.firing_at, h.slug) in one_offs,
                }
                for h in self.holds
            ],
            "catch_up_sends": [
                {
                    "at": local(c.at),
                    "series": c.series,
                    "part": c.part,
                    "slug": c.slug,
                    "people": c.people,
                }
                for c in self.catch_up
            ],
        }


def schedule_listing(newsletter: Newsletter, count: int = 5) -> ScheduleListing:
    """The pending one-offs and the next ``count`` recurring firings, each with its article."""
    schedule = newsletter.settings.schedule
    now = newsletter.clock().astimezone(schedule.tz)
    trigger = recurring_trigger(schedule)
    pending = OneOffStore(newsletter.sessions).pending()
    one_offs = {one.slug: one.at.astimezone(schedule.tz) for one in pending}
    queue = queue_order(newsletter.articles().articles, newsletter.ledger.sent_slugs())
    # Which article each firing would send, as if the schedule were running
    # (the listing says so when it is paused).
    # A held firing is listed (marked held) and sends nothing: its article waits for the next.
    holds = recurring_holds(newsletter.sessions, pending)
    firings = upcoming_firings(queue, trigger, now, one_offs, count, {h.firing_at for h in holds})
    state = SchedulerStateStore(newsletter.sessions).status()
    return ScheduleListing(
        cron=schedule.cron,
        timezone=schedule.timezone,
        catch_up_grace_seconds=grace_seconds(schedule.catch_up_grace),
        state=state,
        scheduler_running=state.leader_alive(newsletter.clock()),
        one_offs=pending,
        firings=firings,
        holds=HoldStore(newsletter.sessions).in_force(),
        catch_up=catch_up_outlook(newsletter),
    )


def _newsletter(ctx: typer.Context) -> Newsletter:
    # The root command keeps --config on its context object (cli.CliState).
    config = getattr(ctx.find_root().obj, "config", None)
    return Newsletter(load_settings(find_config(config)))


def add_one_off(newsletter: Newsletter, slug: str, at: str, label: str = "--at") -> OneOffSend:
    """Set SLUG's one-off send at ``at`` (clinic time), refusing what could never go out.

    The command and the dashboard's Schedule page both call this, so they
    refuse the same things: a time past, a draft, an article already sent.
    """
    when = parse_local_time(at, newsletter.settings.schedule.tz, label)
    now = newsletter.clock()
    if when <= now:
        raise PipelineError(f"{label} {at!r}: {when.isoformat()} is in the past")
    article = newsletter.article(slug)
    if article.status == "draft":
        raise PipelineError(f"{article.path}: is a draft; set status: queued to schedule it")
    if slug in newsletter.ledger.sent_slugs():
        raise PipelineError(f"{slug}: already sent (or being sent); nothing is sent twice")
    return OneOffStore(newsletter.sessions).schedule(slug, when, now)


@schedule_app.command(_ADD, hidden=True)
def schedule_add(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Article slug.")],
    at: Annotated[
        str | None,
        typer.Option("--at", help='When, clinic time: "YYYY-MM-DD HH:MM[:SS]".'),
    ] = None,
) -> None:
    """Send SLUG once at a given time (clinic timezone)."""
    if at is None:
        raise PipelineError(
            f"schedule {slug}: not a command (list, cancel, pause, resume); to send an article"
            ' once, give a time: newsletter schedule SLUG --at "YYYY-MM-DD HH:MM"'
        )
    newsletter = _newsletter(ctx)
    tz = newsletter.settings.schedule.tz
    one = add_one_off(newsletter, slug, at)
    now = newsletter.clock()
    print(f"{slug}: one-off send at {one.at.astimezone(tz).isoformat()}")
    state = SchedulerStateStore(newsletter.sessions).status()
    if state.paused:
        print("note: the schedule is paused; it goes out after `newsletter schedule resume`")
    if not state.leader_alive(now):
        print("note: no scheduler is running; start one (python scheduler.py) to send it")


@schedule_app.command("list")
def schedule_list(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", min=1, help="Recurring firings to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Pending one-off sends and the next firings of the recurring schedule."""
    newsletter = _newsletter(ctx)
    listing = schedule_listing(newsletter, count)
    data = listing.as_dict()
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    grace = timedelta(seconds=listing.catch_up_grace_seconds)
    print(f"Recurring: {listing.cron} in {listing.timezone} (catch-up grace {grace})")
    if listing.state.paused:
        print(f"PAUSED since {data['paused_at']}: firings and one-off sends are held")
    scheduler: Any = data["scheduler"]
    if scheduler["running"]:
        print(f"Scheduler: running ({scheduler['leader']})")
    else:
        print("Scheduler: not running (start it with: python scheduler.py)")
    print("One-off sends:")
    for one in data["one_offs"]:  # type: ignore[attr-defined]
        print(f"  {one['at']}  {one['slug']}")
    if not listing.one_offs:
        print("  (none)")
    print("Next firings:")
    for firing in data["next_firings"]:  # type: ignore[attr-defined]
        what = "(held: nothing is sent)" if firing["held"] else firing["slug"] or "(nothing queued)"
        print(f"  {firing['at']}  {what}")
    for hold in listing.holds:
        print(f"HELD: {hold_note(newsletter, hold)}")
    held = "; held while paused" if listing.state.paused else ""
    print(f"Catch-up sends (next {OUTLOOK_DAYS} days, if no live issue moves them{held}):")
    for send in data["catch_up_sends"]:  # type: ignore[attr-defined]
        print(
            f"  {send['at']}  {send['series']} part {send['part']} ({send['slug']}):"
            f" {send['people']} {'person' if send['people'] == 1 else 'people'}"
        )
    if not listing.catch_up:
        print("  (none)")


@schedule_app.command("cancel")
def schedule_cancel(
    ctx: typer.Context, slug: Annotated[str, typer.Argument(help="Article slug.")]
) -> None:
    """Cancel SLUG's pending one-off send."""
    if not OneOffStore(_newsletter(ctx).sessions).cancel(slug):
        raise PipelineError(f"{slug}: no pending one-off send to cancel")
    print(f"{slug}: one-off send cancelled")


@dataclass(frozen=True)
class Resumed:
    """What resuming the schedule changed."""

    changed: bool  # it was paused
    released: int  # held firings released
    owner_waits: list[str]  # campaigns no longer waiting for the owner


def resume_schedule(newsletter: Newsletter) -> Resumed:
    """Unpause, release every held firing and every campaign waiting for the owner.

    One function for ``schedule resume`` and the dashboard's Resume button, so
    "resume" means the same wherever the owner says it.
    """
    now = newsletter.clock()
    changed = SchedulerStateStore(newsletter.sessions).set_paused(False, now)
    released = HoldStore(newsletter.sessions).release_all(now)
    Brake.of(newsletter.settings.sending, newsletter.sessions).release(now)  # after a look
    waits = StopStore(newsletter.sessions).release_owner_waits(now)
    return Resumed(changed=changed, released=released, owner_waits=waits)


@schedule_app.command("pause")
def schedule_pause(ctx: typer.Context) -> None:
    """Hold every firing, recurring and one-off, until `schedule resume`."""
    newsletter = _newsletter(ctx)
    changed = SchedulerStateStore(newsletter.sessions).set_paused(True, newsletter.clock())
    print(
        "schedule paused: nothing is sent until `newsletter schedule resume`"
        if changed
        else "the schedule was already paused"
    )


@schedule_app.command("resume")
def schedule_resume(ctx: typer.Context) -> None:
    """Release the schedule; held one-off sends still within the catch-up grace go out.

    Campaigns waiting for the owner (credentials or sender refused) are
    released too: the scheduler tries them again within seconds.
    """
    resumed = resume_schedule(_newsletter(ctx))
    print("schedule resumed" if resumed.changed else "the schedule was not paused")
    if resumed.released:
        print(f"{resumed.released} held firing(s) released")
    for slug in resumed.owner_waits:
        print(f"{slug}: no longer waiting for the owner; the scheduler tries it again now")
