"""The email's colours, derived from the clinic's one brand colour (WCAG contrast maths).

Buttons, links and tints follow the brand colour, nudged until text on them stays
readable (WCAG AA, 4.5:1) in light and dark mode. The web pages use the same
:class:`Theme` so the archive and the emails look alike.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

# Colours: the brand colour drives buttons, links and tints, but a light brand colour
# must never make white-on-brand or brand-on-white text unreadable.
_WHITE, _INK, _DARK_CARD = "#ffffff", "#1b1f1e", "#1d2321"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else float(((s + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(c) for c in _rgb(hex_colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _mix(a: str, b: str, amount: float) -> str:
    """``a`` moved ``amount`` (0..1) of the way towards ``b``."""
    mixed = (round(x + (y - x) * amount) for x, y in zip(_rgb(a), _rgb(b), strict=True))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _readable_on(background: str, start: str, towards: str) -> str:
    """``start`` nudged towards ``towards`` until it reads on ``background`` (WCAG AA)."""
    for step in range(11):
        candidate = _mix(start, towards, step / 10)
        if contrast(candidate, background) >= 4.5:
            return candidate
    return towards


@dataclass(frozen=True)
class Theme:
    """Colours derived from the clinic's brand colour."""

    brand: str
    button: str
    on_brand: str
    link: str
    link_dark: str
    tint: str
    tint_dark: str

    @classmethod
    @functools.lru_cache(maxsize=16)
    def from_brand(cls, brand: str) -> Theme:
        """Derive readable link, button and tint colours for light and dark mode.

        Cached (WHY: every issue, welcome mail and web page asks again for the same one
        or two brand colours; the Theme is frozen, so sharing one is safe).
        """
        brand = brand.lower()
        on_brand = _WHITE if contrast(brand, _WHITE) >= contrast(brand, _INK) else _INK
        # a mid-tone brand reads poorly with either text colour: deepen it for the button
        away = "#000000" if on_brand == _WHITE else _WHITE
        return cls(
            brand=brand,
            button=_readable_on(on_brand, brand, away),
            on_brand=on_brand,
            link=_readable_on(_WHITE, brand, "#000000"),
            link_dark=_readable_on(_DARK_CARD, _mix(brand, _WHITE, 0.45), _WHITE),
            tint=_mix(brand, _WHITE, 0.92),
            tint_dark=_mix(brand, _DARK_CARD, 0.82),
        )
