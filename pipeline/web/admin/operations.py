"""The owner's Schedule and Campaigns sections, wired together for :func:`install_admin`.

They share the server's background sends ("send now" starts one, the
campaign page watches it and starts retries), kept on ``app.state`` so the
app can stop them when the server shuts down, and tests can wait for them.
``app.state.live_pace`` paces the campaign page's live stream (tests swap it).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from pipeline.web.admin.background import BackgroundSends
from pipeline.web.admin.campaigns import LivePace, campaign_routes
from pipeline.web.admin.kit import AdminKit
from pipeline.web.admin.schedule import schedule_routes
from pipeline.web.admin.send_now import send_now_routes


def operations_routes(app: FastAPI, kit: AdminKit) -> list[APIRouter]:
    """The routers of /admin/schedule, /admin/send and /admin/campaigns."""
    sends = BackgroundSends(kit.ctx.newsletter)
    app.state.background_sends = sends
    app.state.live_pace = LivePace()
    return [schedule_routes(kit), send_now_routes(kit, sends), campaign_routes(kit, sends)]
