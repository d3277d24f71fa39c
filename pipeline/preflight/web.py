"""The web side: ``[web] base_url`` is https, one-click unsubscribe exists, the archive answers.

The one-click probe POSTs a token that cannot be valid, as a mailbox provider
would (RFC 8058): the route must answer 400 itself, never redirect, which
proves it exists without unsubscribing anyone.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx

from pipeline.links import archive_index_url, unsubscribe_url
from pipeline.preflight.report import Check, failed, passed, soften, warned

GROUP = "web"
PROBE_TOKEN = "preflight-not-a-token"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_url(base_url: str) -> Check:
    parts = urlsplit(base_url)
    if parts.scheme == "https":
        return passed(GROUP, "Base URL", base_url)
    if _loopback(parts.hostname or ""):
        return warned(
            GROUP,
            "Base URL",
            f"{base_url} is a loopback address: fine for development, but subscribers' "
            "links would not work",
            "set [web] base_url to the public https address before sending to real people",
        )
    return warned(
        GROUP,
        "Base URL",
        f"{base_url} is not https: unsubscribe links travel unencrypted",
        "serve the web app over https and set [web] base_url to the https address",
    )


def _one_click(client: httpx.Client, base_url: str) -> Check:
    url = unsubscribe_url(base_url, PROBE_TOKEN)
    try:
        response = client.post(url, data={"List-Unsubscribe": "One-Click"})
    except httpx.HTTPError as exc:
        return warned(
            GROUP,
            "One-click unsubscribe",
            f"could not reach {url} ({type(exc).__name__}); not verified",
            "start the web app (newsletter serve) where [web] base_url points",
        )
    code = response.status_code
    if response.is_redirect:
        return failed(
            GROUP,
            "One-click unsubscribe",
            f"POST {url} redirects ({code} to {response.headers.get('location', '?')}): "
            "mailbox providers do not follow it, so one-click unsubscribe fails",
            "point [web] base_url at the final address (e.g. https://, no redirecting "
            "proxy) so /unsubscribe/... answers the POST itself",
        )
    if code == 400:
        return passed(GROUP, "One-click unsubscribe", f"POST {url} with a bad token answers 400")
    return failed(
        GROUP,
        "One-click unsubscribe",
        f"POST {url} with a bad token answered {code}, not 400: the one-click route is "
        "missing there",
        "serve this newsletter's web app (newsletter serve) at [web] base_url",
    )


def _archive(client: httpx.Client, base_url: str) -> Check:
    url = archive_index_url(base_url)
    try:
        code = client.get(url).status_code
    except httpx.HTTPError as exc:
        return warned(GROUP, "Archive", f"could not reach {url} ({type(exc).__name__})")
    if code == 200:
        return passed(GROUP, "Archive", f"{url} answers 200")
    return warned(
        GROUP,
        "Archive",
        f"{url} answered {code}",
        "serve this newsletter's web app (newsletter serve) at [web] base_url",
    )


def web_checks(
    base_url: str, *, timeout: float, development: bool | None = None
) -> tuple[Check, ...]:
    """The web lines of a preflight.

    On a loopback base_url (development) a failing probe is only a warning:
    no subscriber can reach that address anyway, and whatever else happens to
    listen on the developer's port must not block `make run`. ``development``
    overrides that guess (tests serve a "production" site on loopback).
    """
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        checks = (_base_url(base_url), _one_click(client, base_url), _archive(client, base_url))
    if development is None:
        development = _loopback(urlsplit(base_url).hostname or "")
    if development:
        return tuple(soften(check, "a loopback base_url, during development") for check in checks)
    return checks
