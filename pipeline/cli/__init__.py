"""The ``newsletter`` command, one module per command group.

app.py holds the typer app, the global options, the shared helpers and ``main()``
(the console script ``pipeline.cli:main``); content.py, campaigns.py, feeds.py,
services.py, subscribers.py and schedule.py add their commands to it when
imported. Every user error is one line on stderr (``path:line: message`` for
problems in a file) and exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

# The import order is the order `newsletter --help` lists the commands in
# (preflight first, registered by app.py); groups follow, in add_typer order.
# isort: off
from pipeline.cli.app import app, main
from pipeline.cli.content import DEFAULTS_DIR, collect_problems
from pipeline.cli.campaigns import send, status
from pipeline.cli.catch_up import catch_up
from pipeline.cli.bounces import bounces
from pipeline.cli.owner import notifications
from pipeline.cli.feeds import import_feed_command
from pipeline.cli.services import DEMO_SLUG
from pipeline.cli.subscribers import subscribers_app
from pipeline.cli.schedule import schedule_app
from pipeline.cli.users import users_app
# isort: on

app.add_typer(subscribers_app, name="subscribers")
app.add_typer(schedule_app, name="schedule")
app.add_typer(users_app, name="users")

__all__ = [
    "DEFAULTS_DIR",
    "DEMO_SLUG",
    "app",
    "bounces",
    "catch_up",
    "collect_problems",
    "import_feed_command",
    "main",
    "notifications",
    "schedule_app",
    "send",
    "status",
    "subscribers_app",
    "users_app",
]
