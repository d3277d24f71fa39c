"""Where the sample newsletter folder is: ``newsletter.toml``, ``sample-subscribers.csv``,
``articles/`` and ``templates/``, kept once, at the top of the repository.

``newsletter init`` copies it and the renderer falls back on its templates. In a
source checkout (editable install, tests) it is the repository root, two levels up
from this file; in an installed wheel there is no repository, so the build
(setup.py's build_py) copies the same files into the package as ``pipeline/_sample/``.
The checkout wins when both exist, so an edited template shows at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: What makes a folder the sample: every file ``newsletter init`` copies.
SAMPLE_FILES: Final = ("newsletter.toml", "sample-subscribers.csv")
SAMPLE_FOLDERS: Final = ("articles", "templates")

#: The folder inside the built package (see setup.py).
PACKAGED_NAME: Final = "_sample"


def is_sample_dir(folder: Path) -> bool:
    """True when ``folder`` holds the settings file and the templates."""
    return (folder / "newsletter.toml").is_file() and (folder / "templates").is_dir()


def find_sample_dir(package_dir: Path | None = None) -> Path | None:
    """The sample folder: the checkout's root, else the copy built into the package."""
    package = package_dir or Path(__file__).resolve().parent
    for candidate in (package.parent, package / PACKAGED_NAME):
        if is_sample_dir(candidate):
            return candidate
    return None


# A broken install must still start (`--help`, `check` on a folder of one's own): the
# packaged path is named anyway, so a missing file's error says where it was expected.
SAMPLE_DIR: Final = find_sample_dir() or Path(__file__).resolve().parent / PACKAGED_NAME
SAMPLE_TEMPLATES_DIR: Final = SAMPLE_DIR / "templates"
