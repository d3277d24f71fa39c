"""One newsletter folder, wired together: settings, articles, store, transport.

The CLI, the scheduler and the web app all go through :class:`Newsletter`, so
"send the next issue" means the same thing wherever it is asked for.

It is the one facade every entry point uses: its methods are short
delegations grouped by stage (queue, rendering, sending, status), and the
work lives in the stage folders (previews and test sends in
:mod:`pipeline.previews`, the body of a send in :mod:`pipeline.send_flow`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.sql.elements import ColumnElement

from pipeline import links
from pipeline.config import Settings
from pipeline.content.articles import Article, ArticleSet, load_articles
from pipeline.content.catch_up import live_audience
from pipeline.content.queue import next_due, planned_dates, queue_order
from pipeline.content.series import series_nav
from pipeline.errors import NotFoundError, PipelineError
from pipeline.previews import PreviewFiles, send_test, write_preview
from pipeline.render import RenderedIssue, render_issue
from pipeline.render.message import Sender
from pipeline.schedule.triggers import recurring_trigger

# SendReport is re-exported: every entry point imports it from here, with Newsletter.
from pipeline.send_flow import SendReport as SendReport
from pipeline.send_flow import send_article
from pipeline.sending.brake import Brake
from pipeline.sending.plan import SendPlan
from pipeline.sending.recipients import RecipientLinks
from pipeline.sending.runner import CampaignRunner
from pipeline.sending.transports import Recipient, make_transport
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.ledger import CampaignCounts, CampaignRecord, Ledger
from pipeline.store.oneoffs import schedule_plan
from pipeline.store.reports import CampaignReport, Reports
from pipeline.tokens import TokenSigner

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC. Tests pass their own clock instead."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class QueueEntry:
    """One line of ``newsletter queue``."""

    slug: str
    title: str
    series: str | None
    part: int | None
    status: str
    planned_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        """The shape of ``queue --json``."""
        return {
            "slug": self.slug,
            "title": self.title,
            "series": self.series,
            "part": self.part,
            "status": self.status,
            "planned_at": self.planned_at.isoformat() if self.planned_at else None,
        }


class Newsletter:
    """A newsletter folder opened for work."""

    def __init__(self, settings: Settings, *, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.clock = clock
        self.engine: Engine = make_engine(settings.database_url)
        migrate(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        self.ledger = Ledger(self.sessions)
        self.signer = TokenSigner(settings.secret_key.get_secret_value(), clock=clock)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    # -- articles and the queue -------------------------------------------------

    def articles(self) -> ArticleSet:
        """Every article in the folder, and every problem found reading them."""
        return load_articles(self.settings.articles_path, self.settings.schedule.tz)

    def article(self, slug: str, found: ArticleSet | None = None) -> Article:
        """One article by slug (from ``found``, else the folder), or :class:`NotFoundError`."""
        found = found if found is not None else self.articles()
        for article in found.articles:
            if article.slug == slug:
                return article
        for problem in found.problems:
            if problem.path.stem == slug:
                raise PipelineError(str(problem))
        raise NotFoundError(f"no article with slug {slug!r} in {self.settings.articles_path}")

    def planned(self, articles: tuple[Article, ...], sent: set[str]) -> dict[str, datetime]:
        """When each queued article is expected to go out: its one-off send, else the schedule.

        While the schedule is paused nothing is planned: a date that only
        happens if someone resumes the schedule is not shown as a plan. A
        recurring firing the owner held sends nothing, so it plans nothing.
        """
        schedule = self.settings.schedule
        held = schedule_plan(self.sessions)
        if held.paused:
            return {}
        one_offs = {slug: at.astimezone(schedule.tz) for slug, at in held.one_offs.items()}
        now = self.clock().astimezone(schedule.tz)
        trigger = recurring_trigger(schedule)
        return planned_dates(
            queue_order(articles, sent), trigger, now, one_offs, skipped=held.held_firings
        )

    def queue(self) -> list[QueueEntry]:
        """Queued articles not yet sent, in send order, with planned dates."""
        articles = self.articles().articles
        sent = self.ledger.sent_slugs()
        planned = self.planned(articles, sent)
        return [
            QueueEntry(
                slug=a.slug,
                title=a.title,
                series=a.series,
                part=a.part,
                status=a.status,
                planned_at=planned.get(a.slug),
            )
            for a in queue_order(articles, sent)
        ]

    def next_due(self) -> Article | None:
        """The first queued article whose ``send_after`` has passed."""
        queue = queue_order(self.articles().articles, self.ledger.sent_slugs())
        return next_due(queue, self.clock())

    # -- rendering ----------------------------------------------------------------

    def archive_url(self, slug: str) -> str:
        """Where the web archive shows an issue."""
        return links.archive_url(self.settings.web.base_url, slug)

    def render(self, slug: str, *, catch_up_next: datetime | None = None) -> RenderedIssue:
        """Render an article as it would be sent now (placeholders left in).

        ``catch_up_next``: as a catch-up reader gets it, whose next part (gone
        out live already) reaches them on their own track at that time.
        """
        found = self.articles()  # read once: parsing every article's front matter is the cost
        article = self.article(slug, found)
        return self.render_article(article, found.articles, catch_up_next=catch_up_next)

    def render_article(
        self,
        article: Article,
        articles: tuple[Article, ...],
        *,
        catch_up_next: datetime | None = None,
    ) -> RenderedIssue:
        """Render ``article`` among ``articles`` (also the dashboard's unsaved edit)."""
        slug = article.slug
        sent = self.ledger.sent_slugs() | {slug}
        nav = series_nav(
            article,
            articles,
            sent_slugs=sent,
            base_url=self.settings.web.base_url,
            planned=self.planned(articles, sent),
        )
        if catch_up_next is not None and nav is not None:
            nav = nav.for_catch_up(catch_up_next)
        return render_issue(article, nav, self.settings, archive_url=self.archive_url(slug))

    def sender(self) -> Sender:
        """The From/Reply-To of every email."""
        email = self.settings.email
        return Sender(email=email.from_email, name=email.from_name, reply_to=email.reply_to)

    def links(self) -> RecipientLinks:
        """Builds personal values (name fallback, signed unsubscribe link)."""
        return RecipientLinks(
            signer=self.signer,
            base_url=self.settings.web.base_url,
            first_name_fallback=self.settings.email.first_name_fallback,
        )

    def sample_recipient(self, email: str) -> Recipient:
        """A recipient outside the ledger, for previews and test sends."""
        return Recipient(
            email=email,
            first_name=self.settings.email.first_name_fallback,
            unsubscribe_url=links.unsubscribe_page_url(self.settings.web.base_url),
        )

    def preview(self, slug: str, out_dir: Path) -> PreviewFiles:
        """Write ``SLUG.html``, ``SLUG.txt`` and ``SLUG.eml`` as a subscriber would get them."""
        return write_preview(self, slug, out_dir)

    # -- sending ------------------------------------------------------------------

    def resolve_slug(self, slug: str | None) -> str:
        """The given slug, or the next due article's."""
        if slug is not None:
            return slug
        article = self.next_due()
        if article is None:
            raise NotFoundError("nothing to send: no queued article is due")
        return article.slug

    def send(
        self,
        slug: str | None = None,
        *,
        dry_run: bool = False,
        include_new: bool = False,
        resend_uncertain: bool = False,
        retry_failed: bool = False,
        progress: Callable[[CampaignCounts], None] | None = None,
        on_runner: Callable[[CampaignRunner], None] | None = None,
        by_scheduler: bool = False,
        on_plan: Callable[[SendPlan], None] | None = None,
    ) -> SendReport:
        """Send an article to every active subscriber; a repeat resumes, never resends.

        ``resend_uncertain`` puts rows in doubt back in the queue (the owner
        prefers a possible duplicate to a possible miss). ``retry_failed`` does
        so for rows that failed for a reason the owner may have fixed (a
        request refused, retries run out; never a refusal of the person).
        ``on_runner`` hands
        the runner to the caller before sending starts, so a signal handler
        can ask it to stop gracefully. A send by hand (not ``by_scheduler``)
        answers whatever the campaign's last stop was waiting for; a
        scheduler's send keeps counting the stops in a row, for the backoff.
        ``on_plan`` is told the lanes and processes the run chose, before it sends.
        """
        return send_article(
            self,
            self.resolve_slug(slug),
            dry_run=dry_run,
            include_new=include_new,
            resend_uncertain=resend_uncertain,
            retry_failed=retry_failed,
            progress=progress,
            on_runner=on_runner,
            by_scheduler=by_scheduler,
            on_plan=on_plan,
        )

    def plan(self, slug: str) -> tuple[CampaignRecord, bool]:
        """The article's campaign, planned now if it was not: rendered once, audience snapshot.

        Returns the campaign and whether this call planned it. Planning alone
        sends nothing: ``send`` or a ``worker`` does.
        """
        campaign = self.ledger.get_campaign(slug)
        if campaign is not None:
            return campaign, False
        found = self.articles()  # read once for the checks, the render and the audience
        article = self.article(slug, found)
        if article.status == "draft":
            raise PipelineError(f"{article.path}: is a draft; set status: queued to send it")
        issue = self.render_article(article, found.articles)
        keep = self.live_keep(slug, found)
        return self.ledger.plan(issue, self.settings.sending.transport, self.clock(), keep)

    def live_keep(self, slug: str, found: ArticleSet | None = None) -> ColumnElement[bool] | None:
        """Who a live send of ``slug`` reaches: not people catching up on its series."""
        articles = (found if found is not None else self.articles()).articles
        return live_audience(self.sessions, articles, slug, self.settings, self.clock())

    def runner(self, on_plan: Callable[[SendPlan], None] | None = None) -> CampaignRunner:
        """A campaign runner on the configured transport (lanes and processes: settings or auto)."""
        return CampaignRunner(
            self.ledger,
            lambda: make_transport(self.settings, self.clock),
            sender=self.sender(),
            links=self.links(),
            batch_size=self.settings.sending.batch_size,
            clock=self.clock,
            concurrency=self.settings.sending.concurrency,
            processes=self.settings.sending.processes,
            # A forked helper must not share pooled connections with this process.
            before_fork=self.engine.dispose,
            smtp_max_connections=self.settings.smtp.max_connections,
            on_plan=on_plan,
            brake=Brake.of(self.settings.sending, self.sessions),
        )

    def test_send(self, slug: str, to: str) -> str:
        """One copy to ``to`` through the configured transport, outside the ledger."""
        return send_test(self, slug, to)

    def status(self, slug: str | None = None) -> list[CampaignCounts]:
        """Counts per campaign, newest first (or just one)."""
        return [self.ledger.counts(c) for c in self._campaigns(slug)]

    def reports(self, slug: str | None = None) -> list[CampaignReport]:
        """``status`` in full: the counts, why rows failed, who holds rows in flight."""
        reports = Reports(self.sessions)
        return [reports.report(c.id, self.ledger.counts(c)) for c in self._campaigns(slug)]

    def _campaigns(self, slug: str | None) -> list[CampaignRecord]:
        if slug is None:
            return self.ledger.campaigns()
        campaign = self.ledger.get_campaign(slug)
        if campaign is None:
            raise NotFoundError(f"no campaign for {slug!r} (it has not been sent)")
        return [campaign]
