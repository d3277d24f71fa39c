"""Every link in the email answers: HEAD, then GET; 2xx or 3xx passes.

A dead link is a warning (it does not get mail rejected); so is a host that
cannot be reached, since an offline machine must still be able to send. Each
link has its own timeout and the whole check an overall bound.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable

import httpx

from pipeline.preflight.report import Check, passed, warned

GROUP = "links"
WORKERS = 8
_HEADERS = {"User-Agent": "newsletter-pipeline preflight (link check)"}


def http_client(timeout: float, *, follow_redirects: bool = False) -> httpx.Client:
    """The HTTP client of preflight's web checks: a timeout per request, our User-Agent."""
    return httpx.Client(timeout=timeout, follow_redirects=follow_redirects, headers=_HEADERS)


def _probe(client: httpx.Client, url: str) -> str | None:
    """None when the link answers 2xx/3xx, else what went wrong."""
    try:
        response = client.head(url)
        if response.status_code < 400:
            return None
        # Some servers refuse HEAD (405) or answer it wrongly: GET decides.
        with client.stream("GET", url) as streamed:
            if streamed.status_code < 400:
                return None
            return f"answered {streamed.status_code}"
    except httpx.TimeoutException:
        return f"did not answer within {client.timeout.read:g} s"
    except httpx.HTTPError as exc:
        return f"could not be reached ({type(exc).__name__})"


def link_targets(hrefs: Iterable[str]) -> list[str]:
    """The distinct http(s) links, in order; per-recipient placeholders left out."""
    seen: dict[str, None] = {}
    for href in hrefs:
        if href.startswith(("http://", "https://")) and "%%" not in href:
            seen.setdefault(href, None)
    return list(seen)


def link_checks(urls: list[str], *, timeout: float, total: float) -> tuple[Check, ...]:
    """One warning per link that does not answer, then one summary line."""
    if not urls:
        return (passed(GROUP, "Links", "the email has no links to check"),)
    problems: dict[str, str] = {}
    not_done: set[concurrent.futures.Future[str | None]] = set()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS)
    client = http_client(timeout)
    try:
        futures = {pool.submit(_probe, client, url): url for url in urls}
        done, not_done = concurrent.futures.wait(futures, timeout=total)
        for future in done:
            outcome = future.result()
            if outcome is not None:
                problems[futures[future]] = outcome
        for future in not_done:
            future.cancel()
            problems[futures[future]] = f"not checked within the overall {total:g} s bound"
    finally:
        # Probes still running end at their own timeout; nobody waits for them.
        pool.shutdown(wait=False, cancel_futures=True)
    checks = [
        warned(
            GROUP,
            "Link",
            f"{url} {problems[url]}",
            "open it in a browser; correct or remove it if it is dead"
            if "reached" in problems[url] or "bound" in problems[url]
            else "correct or remove this link",
        )
        for url in urls
        if url in problems
    ]
    answered = len(urls) - len(problems)
    summary = f"{answered} of {len(urls)} link(s) answered"
    checks.append(warned(GROUP, "Links", summary) if problems else passed(GROUP, "Links", summary))
    if not not_done:
        client.close()  # else a straggler still uses it; it goes when they end
    return tuple(checks)
