"""One copy of the sample folder: kept at the top, copied into the wheel at build time.

``newsletter init`` and the renderer's default templates read the folder through
pipeline/sample.py: the repository root in a source checkout, ``pipeline/_sample``
in an installed wheel (put there by setup.py). A real wheel is built here, offline,
and ``newsletter init`` is run from its unpacked contents.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipeline.render import DEFAULT_TEMPLATES_DIR
from pipeline.sample import SAMPLE_DIR, find_sample_dir
from tests.helpers import ROOT

SAMPLE = [
    "newsletter.toml",
    "sample-subscribers.csv",
    "templates/newsletter.mjml",
    "templates/newsletter.txt",
    "articles/hip-pain-massage-therapy.md",
    "articles/massage-and-mental-health.md",
    "articles/massage-guns-are-they-worth-it.md",
]
#: What a wheel is built from (a copy, so the build never writes into the checkout).
SOURCE = [
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "pipeline",
    "articles",
    "templates",
    "newsletter.toml",
    "sample-subscribers.csv",
]


def test_seed_is_the_sample_issue() -> None:
    text = (ROOT / "articles" / "hip-pain-massage-therapy.md").read_text(encoding="utf-8")
    assert "part: 2" in text
    assert Path(ROOT / "newsletter.toml").read_text(encoding="utf-8").count("[clinic]") == 1


def test_a_checkout_reads_the_top_level_folder() -> None:
    assert SAMPLE_DIR == ROOT
    assert DEFAULT_TEMPLATES_DIR == ROOT / "templates"
    # No second copy inside the package to drift from the top-level one.
    inside = {p.name for p in (ROOT / "pipeline").rglob("*") if p.is_file()}
    assert not inside & {"newsletter.toml", "sample-subscribers.csv", "newsletter.mjml"}


def test_the_finder_falls_back_on_the_packaged_copy(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "pipeline"
    assert find_sample_dir(package) is None  # neither a checkout nor a built copy
    (package / "_sample" / "templates").mkdir(parents=True)
    (package / "_sample" / "newsletter.toml").write_text("", encoding="utf-8")
    assert find_sample_dir(package) == package / "_sample"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built the way pip installs one (no network: the venv's setuptools)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCE:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*command, "--no-index", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [found] = out.glob("newsletter_pipeline-*.whl")
    return found


def test_the_wheel_carries_the_sample_once(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in SAMPLE:
            assert archive.read(f"pipeline/_sample/{name}") == (ROOT / name).read_bytes(), name
    assert "pipeline/sample.py" in names
    copies = {n for n in names if n.endswith(("newsletter.toml", "newsletter.mjml"))}
    assert copies == {
        "pipeline/_sample/newsletter.toml",
        "pipeline/_sample/templates/newsletter.mjml",
    }


def test_init_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    target = tmp_path / "clinic"
    # The unpacked wheel first on the path: the checkout (and its top-level sample) is not
    # reachable from there, so only the packaged copy can serve `init`.
    script = (
        "import sys, pipeline, pipeline.sample as s;"
        f"assert pipeline.__file__.startswith({str(site)!r}), pipeline.__file__;"
        "print(s.SAMPLE_DIR);"
        "from pipeline.cli import main;"
        f"sys.exit(main(['init', {str(target)!r}]))"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[0] == str(site / "pipeline" / "_sample")
    for name in SAMPLE:
        assert (target / name).read_bytes() == (ROOT / name).read_bytes(), name
