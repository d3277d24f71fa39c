"""Build step: put the sample newsletter folder into the wheel.

The sample (newsletter.toml, sample-subscribers.csv, articles/, templates/) is kept
once, at the top of the repository, where the product card wants it and where a
source checkout reads it (pipeline/sample.py). An installed wheel has no
repository beside it, so building copies those files into the package as
``pipeline/_sample/``; nothing is copied in the source tree, so there is no second
copy to drift. Everything else about the build is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SAMPLE_FILES = ("newsletter.toml", "sample-subscribers.csv")
SAMPLE_FOLDERS = ("articles", "templates")


class BuildPyWithSample(build_py):
    """``build_py``, then the sample folder copied to ``<build>/pipeline/_sample``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself
        target = Path(self.build_lib) / "pipeline" / "_sample"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in SAMPLE_FILES:
            shutil.copyfile(ROOT / name, target / name)
        for folder in SAMPLE_FOLDERS:
            shutil.copytree(ROOT / folder, target / folder)


setup(cmdclass={"build_py": BuildPyWithSample})
