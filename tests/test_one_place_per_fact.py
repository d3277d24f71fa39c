"""Each fact the issue #13 names is defined in one module, and this keeps it so.

The README promises (Layout, "Where to change what") one home per fact: the
URLs in ``pipeline/links.py``, what goes out next and when in
``pipeline/content/queue.py``, the order of parts in a series in
``pipeline/content/series.py``, the nh3 policy in ``pipeline/content/sanitize.py``.
A second copy elsewhere drifts; these scans name its file and line. Route
declarations (``@router.get("/archive/{slug}")``) are plain strings, not
f-strings, and templates are not Python, so neither is counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
URL_PATHS = ("/archive", "/unsubscribe", "/confirm")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE.parent).as_posix()
        yield name, ast.parse(path.read_text(encoding="utf-8"), filename=name)


def url_fstrings(tree: ast.Module) -> list[int]:
    """Lines of f-strings whose literal text holds one of the URL paths."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        and any(
            isinstance(part, ast.Constant) and any(p in str(part.value) for p in URL_PATHS)
            for part in node.values
        )
    ]


def part_order_keys(tree: ast.Module) -> list[int]:
    """Lines of ``(x.part or 0, x.slug)``: the order of parts within a series."""
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Tuple) and len(node.elts) == 2):
            continue
        first, second = node.elts
        if (
            isinstance(first, ast.BoolOp)
            and isinstance(first.op, ast.Or)
            and isinstance(first.values[0], ast.Attribute)
            and first.values[0].attr == "part"
            and isinstance(second, ast.Attribute)
            and second.attr == "slug"
        ):
            lines.append(node.lineno)
    return lines


def _imports(tree: ast.Module, module: str) -> bool:
    return any(
        (isinstance(node, ast.Import) and any(a.name == module for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module == module)
        for node in ast.walk(tree)
    )


def _top_level_functions(tree: ast.Module) -> set[str]:
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_url_formats_are_built_only_in_links() -> None:
    found = [
        f"{name}:{line}"
        for name, tree in _modules()
        if name != "pipeline/links.py"
        for line in url_fstrings(tree)
    ]
    assert found == []


def test_links_does_build_them() -> None:
    # the scan above would pass on nothing at all; it must see links.py's own
    links = ast.parse((PACKAGE / "links.py").read_text(encoding="utf-8"))
    assert len(url_fstrings(links)) >= 3


def test_nh3_is_used_only_by_the_sanitizing_policy() -> None:
    users = [name for name, tree in _modules() if _imports(tree, "nh3")]
    assert users == ["pipeline/content/sanitize.py"]


def test_the_queue_rule_is_defined_once() -> None:
    rule = {"queue_order", "next_due", "planned_dates", "upcoming_firings"}
    homes = {
        name: sorted(rule & _top_level_functions(tree))
        for name, tree in _modules()
        if rule & _top_level_functions(tree)
    }
    assert homes == {"pipeline/content/queue.py": sorted(rule)}


def test_the_order_of_parts_is_defined_once() -> None:
    found = [f"{name}:{line}" for name, tree in _modules() for line in part_order_keys(tree)]
    assert len(found) == 1, found
    assert found[0].startswith("pipeline/content/series.py:")
