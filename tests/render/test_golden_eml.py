"""Golden file for the whole message a subscriber receives (preview of the sample)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / f"{SAMPLE_SLUG}.eml"


def normalize(raw: bytes) -> str:
    """Drop what differs per run: the Message-ID and the MIME boundaries."""
    text = raw.decode("ascii")
    text = re.sub(r"^Message-ID: .*\r\n", "", text, flags=re.MULTILINE)
    for boundary in set(re.findall(r'boundary="([^"]+)"', text)):
        text = text.replace(boundary, "BOUNDARY")
    return text.replace("\r\n", "\n")


def test_sample_message_matches_golden(tmp_path: Path) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "golden"})
    files = Newsletter(settings, clock=FixedClock()).preview(SAMPLE_SLUG, tmp_path / "out")
    message = normalize(files.eml.read_bytes())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(message, encoding="utf-8")
    assert message == GOLDEN.read_text(encoding="utf-8"), (
        f"{GOLDEN.name} differs; if intended, regenerate with UPDATE_GOLDEN=1"
    )
