"""The dashboard (``/admin``): owners and writers work in a browser.

:func:`install_admin` adds its routes to the web app: :mod:`.login` (log in,
log out), :mod:`.setup` (the first-run link), :mod:`.queue` (``/admin``, the
queue; pause/resume) and :mod:`.subscribers` (search, a person, remove, forget;
its CSV upload and export in :mod:`.subscriber_files`). :mod:`.auth` holds the session
cookie, the login limits and the role checks every route makes first.
"""

from __future__ import annotations

from fastapi import FastAPI

from pipeline.accounts import SetupLinks
from pipeline.web.admin.articles import article_routes
from pipeline.web.admin.auth import AdminAuth, install_handlers
from pipeline.web.admin.kit import AdminKit
from pipeline.web.admin.login import login_routes
from pipeline.web.admin.operations import operations_routes
from pipeline.web.admin.queue import queue_routes
from pipeline.web.admin.setup import setup_routes
from pipeline.web.admin.subscribers import subscriber_routes
from pipeline.web.context import WebContext

#: Dashboard routes that answer without a session (everything else needs one).
PUBLIC_ADMIN_PATHS = frozenset({"/admin/login", "/admin/setup/{token}"})


def install_admin(app: FastAPI, ctx: WebContext) -> None:
    """Add the dashboard's routes and its login/role answers to ``app``."""
    auth = AdminAuth(ctx)
    kit = AdminKit(ctx, auth)
    links = SetupLinks(ctx.settings.secret_key.get_secret_value(), ctx.clock)
    for router in (
        login_routes(kit),
        setup_routes(kit, links),
        queue_routes(kit),
        article_routes(kit),  # Write, Preview and test
        subscriber_routes(kit),
        *operations_routes(app, kit),  # Schedule, send now, Campaigns
    ):
        app.include_router(router)
    install_handlers(app, ctx, auth)
