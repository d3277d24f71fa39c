"""The result records of a preflight and their table / JSON forms.

A check is one line a clinic owner can act on: what was looked at, what was
found, and for anything not passing the exact fix. Only a ``fail`` blocks a
send; everything a machine cannot decide (no network) is a ``warn``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Status(StrEnum):
    """How one check came out."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One line of the preflight table."""

    group: str  # dns | web | email | links | render
    name: str  # e.g. "DKIM", "SPF", "HTML size"
    status: Status
    found: str
    fix: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The shape of ``preflight --json``'s ``checks`` entries."""
        return {
            "group": self.group,
            "name": self.name,
            "status": str(self.status),
            "found": self.found,
            "fix": self.fix,
        }

    def line(self) -> str:
        """``fail  DKIM: found ... -> fix: ...``, one line."""
        text = f"{self.status.value:<4}  {self.name}: {self.found}"
        return f"{text} -> fix: {self.fix}" if self.fix else text


def passed(group: str, name: str, found: str) -> Check:
    """A passing check."""
    return Check(group, name, Status.PASS, found)


def warned(group: str, name: str, found: str, fix: str | None = None) -> Check:
    """A check worth acting on that does not block a send."""
    return Check(group, name, Status.WARN, found, fix)


def failed(group: str, name: str, found: str, fix: str) -> Check:
    """A check that blocks a send until fixed."""
    return Check(group, name, Status.FAIL, found, fix)


def soften(check: Check, why: str) -> Check:
    """A failure turned into a warning (e.g. the outbox transport delivers nothing)."""
    if check.status is not Status.FAIL:
        return check
    return replace(check, status=Status.WARN, found=f"{check.found} ({why})")


@dataclass(frozen=True)
class PreflightReport:
    """Every check of one preflight run."""

    slug: str | None
    checks: tuple[Check, ...]

    @property
    def failures(self) -> tuple[Check, ...]:
        """The checks that block a send."""
        return tuple(c for c in self.checks if c.status is Status.FAIL)

    @property
    def warnings(self) -> tuple[Check, ...]:
        """The checks worth a look that do not block."""
        return tuple(c for c in self.checks if c.status is Status.WARN)

    @property
    def ok(self) -> bool:
        """Nothing blocks a send."""
        return not self.failures

    def summary(self) -> str:
        """``3 passed, 1 warning, 1 failure``."""
        n_pass = len(self.checks) - len(self.failures) - len(self.warnings)
        return f"{n_pass} passed, {len(self.warnings)} warning(s), {len(self.failures)} failure(s)"

    def as_dict(self) -> dict[str, object]:
        """The shape of ``preflight --json``."""
        return {
            "slug": self.slug,
            "ok": self.ok,
            "passed": len(self.checks) - len(self.failures) - len(self.warnings),
            "warnings": len(self.warnings),
            "failures": len(self.failures),
            "checks": [c.as_dict() for c in self.checks],
        }
