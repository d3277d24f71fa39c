"""``/admin/campaigns`` and ``/admin/campaigns/{slug}`` (owners only): what was sent, live.

Per campaign: the ledger's counts (the delivery guarantee's sum), the
provider's event counts, why rows failed (grouped as ``status`` groups them),
a chart of sends over time, and the owner's two remedies with the CLI's
rules: "retry these" puts back only failures whose cause may be fixed
(``send --retry-failed``: never a refusal of the person), and "resend to the
uncertain ones" (``--resend-uncertain``) asks first, warning that some may
get the email twice. Both run in a thread (:mod:`.background`).

While a campaign has rows to send, its page updates without a reload: a few
lines of plain script open ``/admin/campaigns/{slug}/live``, a Server-Sent
Events stream of the counts as JSON every second that ends when the
campaign finishes (and after :attr:`LivePace.max_events` events at most; the
browser then reconnects). That page alone allows that one script, by its
hash, and connections to this site; every other page allows no script at
all. Without script the page shows the counts as they were at load and a
Reload link.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response, StreamingResponse
from markupsafe import Markup

from pipeline.accounts import Role
from pipeline.cli.status_view import COUNT_COLUMNS, retryable
from pipeline.sending.transports.base import RETRYABLE_FAILURES
from pipeline.store.dashboard import campaign_event_counts, engagement_by_article, sends_over_time
from pipeline.store.ledger import CampaignRecord
from pipeline.store.reports import Reports
from pipeline.store.stops import StopStore
from pipeline.web.admin.auth import AdminSession
from pipeline.web.admin.background import BackgroundSends, SendRequest
from pipeline.web.admin.charts import engagement_chart, sends_chart
from pipeline.web.admin.kit import AdminKit
from pipeline.web.admin.send_now import campaign_path
from pipeline.web.security import policy_allowing

FormField = Annotated[str, Form()]

#: Failure kinds "Retry these" sends again (``send --retry-failed``'s, as text).
RETRYABLE_KINDS = frozenset(kind.value for kind in RETRYABLE_FAILURES)
#: The event counts shown beside the ledger's, in this order.
EVENT_COLUMNS = ("delivered", "bounced", "opened", "clicked", "unsubscribed")

#: The campaign page's one script: numbers follow the live stream; it closes when done.
LIVE_SCRIPT = """
(function () {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) { return; }
  var note = document.getElementById("live-note");
  var source = new EventSource(live.getAttribute("data-src"));
  note.textContent = "These numbers update by themselves while the campaign runs.";
  source.addEventListener("counts", function (event) {
    var counts = JSON.parse(event.data);
    Object.keys(counts).forEach(function (key) {
      var cells = document.querySelectorAll('[data-count="' + key + '"]');
      for (var i = 0; i < cells.length; i++) {
        cells[i].textContent = Number(counts[key]).toLocaleString("en");
      }
    });
  });
  source.addEventListener("done", function () {
    source.close();
    note.textContent = "Finished: these numbers are final. Reload for the chart and reasons.";
  });
})();
"""
#: The site's policy plus that one script and connections to this site (its stream).
LIVE_PAGE_POLICY = policy_allowing(LIVE_SCRIPT)


@dataclass(frozen=True)
class LivePace:
    """How the live stream paces itself; tests swap in a sleep that moves the campaign on."""

    interval: float = 1.0
    #: Events per connection (ten minutes): a stream never runs for ever.
    max_events: int = 600
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep


def campaign_routes(kit: AdminKit, sends: BackgroundSends) -> APIRouter:
    """The campaigns list, one campaign's page, its live stream and its remedies."""
    router = APIRouter()
    newsletter = kit.ctx.newsletter
    zone = newsletter.settings.schedule.tz

    def find(slug: str) -> CampaignRecord | None:
        return newsletter.ledger.get_campaign(slug)

    def live_counts(campaign: CampaignRecord) -> dict[str, Any]:
        counts = newsletter.ledger.counts(campaign)
        data: dict[str, Any] = {name: getattr(counts, name) for name in COUNT_COLUMNS}
        data.update(campaign_event_counts(newsletter.sessions, campaign.id))
        data["finished"] = counts.pending == 0 and counts.sending == 0
        return data

    def not_found(request: Request) -> Response:
        return kit.ctx.pages.page(request, "not_found.html", status_code=404)

    @router.get("/admin/campaigns")
    def campaigns(request: Request) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        rows = [
            {"slug": c.slug, "subject": c.issue.subject, "counts": live_counts(c)}
            for c in newsletter.ledger.campaigns()
        ]
        chart = engagement_chart("engagement", engagement_by_article(newsletter.sessions))
        return kit.page(
            request,
            "campaigns.html",
            session,
            page_title="Campaigns",
            section="campaigns",
            rows=rows,
            count_columns=COUNT_COLUMNS,
            event_columns=EVENT_COLUMNS,
            chart=chart,
        )

    def campaign_page(
        request: Request, session: AdminSession, campaign: CampaignRecord, notice: str | None
    ) -> Response:
        counts = live_counts(campaign)
        ledger = newsletter.ledger.counts(campaign)
        failures = (
            Reports(newsletter.sessions).failure_reasons(campaign.id)
            if ledger.failed or ledger.uncertain
            else []
        )
        stop = StopStore(newsletter.sessions).get(campaign.id)
        points = sends_over_time(newsletter.sessions, campaign.id)
        live = not counts["finished"]
        response = kit.page(
            request,
            "campaign.html",
            session,
            page_title=campaign.issue.subject,
            section="campaigns",
            slug=campaign.slug,
            subject=campaign.issue.subject,
            counts=counts,
            count_columns=COUNT_COLUMNS,
            event_columns=EVENT_COLUMNS,
            failures=[
                {
                    "count": f.count,
                    "status": f.status,
                    "reason": f.reason,
                    # The rule of `send --retry-failed`: the cause may be fixed by now.
                    "retry": f.status == "failed" and f.kind in RETRYABLE_KINDS,
                }
                for f in failures
            ],
            retryable=retryable(failures),
            stop=stop.describe(zone) if stop else None,
            sending_here=sends.running(campaign.slug),
            error=sends.error(campaign.slug),
            notice=notice,
            chart=sends_chart("sends", points, ledger.planned, zone),
            live=live,
            live_src=f"{campaign_path(campaign.slug)}/live",
            # Our own constant, never anything typed: the one place a script enters a page.
            live_script=Markup(LIVE_SCRIPT) if live else None,
            path=campaign_path(campaign.slug),
        )
        if live:
            response.headers["Content-Security-Policy"] = LIVE_PAGE_POLICY
        return response

    @router.get("/admin/campaigns/{slug}")
    def campaign(request: Request, slug: str) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        found = find(slug)
        if found is None:
            return not_found(request)
        notice = {
            "retry": "Sending the failed rows again: the counts below follow it.",
            "resend": "Sending again to the uncertain rows: the counts below follow it.",
            "busy": "A send of this campaign is already running here: it carries on.",
        }.get(request.query_params.get("started", ""))
        return campaign_page(request, session, found, notice)

    @router.get("/admin/campaigns/{slug}/live")
    def live(request: Request, slug: str) -> Response:
        kit.auth.require(request, Role.OWNER)
        found = find(slug)
        if found is None:
            return not_found(request)
        pace: LivePace = request.app.state.live_pace

        async def events() -> AsyncIterator[str]:
            # Reconnect after 3 s if the stream ends early (the bound, a restart).
            yield "retry: 3000\n\n"
            for _ in range(pace.max_events):
                data = await anyio.to_thread.run_sync(live_counts, found)
                yield f"event: counts\ndata: {json.dumps(data)}\n\n"
                if data["finished"]:
                    yield "event: done\ndata: {}\n\n"
                    return
                await pace.sleep(pace.interval)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def remedy(request: Request, slug: str, csrf_token: str, what: SendRequest) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        if find(slug) is None:
            return not_found(request)
        started = sends.start(what)
        kind = "retry" if what.retry_failed else "resend"
        return kit.redirect(f"{campaign_path(slug)}?started={kind if started else 'busy'}", session)

    @router.post("/admin/campaigns/{slug}/retry")
    def retry(request: Request, slug: str, csrf_token: FormField = "") -> Response:
        return remedy(request, slug, csrf_token, SendRequest(slug, retry_failed=True))

    @router.get("/admin/campaigns/{slug}/resend-uncertain")
    def resend_confirm(request: Request, slug: str) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        found = find(slug)
        if found is None:
            return not_found(request)
        uncertain = newsletter.ledger.counts(found).uncertain
        people = f"{uncertain:,} {'person' if uncertain == 1 else 'people'}"
        return kit.page(
            request,
            "send_confirm.html",
            session,
            page_title="Resend to the uncertain ones?",
            section="campaigns",
            heading=f"Send '{found.issue.subject}' again to the {people} in doubt?",
            view=None,
            blocked=uncertain == 0,
            action=f"{campaign_path(slug)}/resend-uncertain",
            button=f"Yes, send it again to {people}",
            cancel=campaign_path(slug),
            warning=(
                "Some of them may get this email twice: their message may have left before "
                "the sender lost track of it. Resending means a possible duplicate rather "
                "than a possible miss."
                if uncertain
                else "No row of this campaign is in doubt: there is nothing to resend."
            ),
        )

    @router.post("/admin/campaigns/{slug}/resend-uncertain")
    def resend(request: Request, slug: str, csrf_token: FormField = "") -> Response:
        return remedy(request, slug, csrf_token, SendRequest(slug, resend_uncertain=True))

    return router
