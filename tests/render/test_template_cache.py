"""Compiled templates kept between commands (Jinja's bytecode cache): faster, never wrong."""

from __future__ import annotations

from pathlib import Path

import jinja2

from pipeline.render.templates import _QuietBytecodeCache, template_environment


def _env(templates: Path, cache: jinja2.BytecodeCache) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(templates), bytecode_cache=cache)


def _folders(tmp_path: Path, source: str) -> tuple[Path, Path]:
    """A templates folder holding ``t.txt``, and an empty cache folder."""
    templates, cache_dir = tmp_path / "templates", tmp_path / "cache"
    templates.mkdir()
    cache_dir.mkdir()
    (templates / "t.txt").write_text(source)
    return templates, cache_dir


def test_a_second_process_loads_the_compiled_template_and_an_edit_is_seen(tmp_path: Path) -> None:
    templates, cache_dir = _folders(tmp_path, "Hello {{ name }}")
    cache = _QuietBytecodeCache(str(cache_dir))
    assert _env(templates, cache).get_template("t.txt").render(name="Ann") == "Hello Ann"
    (cached,) = cache_dir.iterdir()
    loaded = []

    class Watching(_QuietBytecodeCache):
        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            super().load_bytecode(bucket)
            loaded.append(bucket.code is not None)

    assert _env(templates, Watching(str(cache_dir))).get_template("t.txt").render(name="Bo") == (
        "Hello Bo"
    )
    assert loaded == [True]  # compiled code read back, not compiled again
    (templates / "t.txt").write_text("Bye {{ name }}")
    assert _env(templates, Watching(str(cache_dir))).get_template("t.txt").render(name="Cy") == (
        "Bye Cy"
    )
    assert loaded == [True, False]  # the source changed: its checksum misses, compiled anew
    assert cached.exists()


def test_a_damaged_or_unwritable_cache_only_costs_a_compile(tmp_path: Path) -> None:
    templates, cache_dir = _folders(tmp_path, "Hi {{ name }}")
    cache = _QuietBytecodeCache(str(cache_dir))
    assert _env(templates, cache).get_template("t.txt").render(name="Ann") == "Hi Ann"
    (cached,) = cache_dir.iterdir()
    cached.write_bytes(b"not a compiled template at all")
    assert _env(templates, cache).get_template("t.txt").render(name="Bo") == "Hi Bo"
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert (
        _env(templates, _QuietBytecodeCache(str(not_a_folder)))
        .get_template("t.txt")
        .render(name="Cy")
        == "Hi Cy"
    )


def test_the_email_templates_use_the_cache(tmp_path: Path) -> None:
    assert isinstance(template_environment(tmp_path).bytecode_cache, _QuietBytecodeCache)
