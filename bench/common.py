"""What the benchmark modules share: the secret, settings of a folder, an audience CSV."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.config import Settings, load_settings  # noqa: E402

SECRET = "bench-secret"


def settings_for(folder: Path, environ: dict[str, str]) -> Settings:
    """The folder's settings, with the benchmark's secret key."""
    return load_settings(
        folder / "newsletter.toml", environ={"NEWSLETTER_SECRET_KEY": SECRET, **environ}
    )


def write_csv(path: Path, count: int) -> None:
    """``count`` subscribers, in the shape ``newsletter subscribers import`` reads."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,first_name,last_name,tags\n")
        for start in range(0, count, 10_000):
            handle.writelines(
                f"reader{i:07d}@example.com,Reader{i},Surname,patient;newsletter\n"
                for i in range(start, min(start + 10_000, count))
            )
