"""The package's layout as the docs describe it: rooms, no import cycle, paths that exist."""

from __future__ import annotations

import re
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), restricted to ``modules``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v) & modules:
            if w.startswith(v + "."):  # a package's __init__ re-exporting its own modules
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_between_modules_of_the_package() -> None:
    graph = grimp.build_graph("ffzero_lab")
    assert _cycles(graph, set(graph.modules)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="a")
    graph.add_import(importer="b", imported="c")
    graph.add_module("c.d")
    graph.add_import(importer="c", imported="c.d")  # a package's face: no cycle
    graph.add_import(importer="c.d", imported="c")
    assert _cycles(graph, {"a", "b", "c", "c.d"}) == [["a", "b"]]


def test_the_package_floor_holds_at_most_six_modules() -> None:
    files = sorted(p.name for p in (ROOT / "ffzero_lab").glob("*.py"))
    assert len(files) <= 6, files


def test_every_path_the_docs_name_exists() -> None:
    placeholders = {"protocols/mine.yaml", "benchmarks/NAME.py", "sweeps/mine.yaml"}
    pattern = re.compile(r"(?<![\w/.-])((?:ffzero_lab|drivers|tests|benchmarks|protocols|docs|examples)/[\w./-]*\w)")
    missing = []
    for doc in [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path in pattern.findall(doc.read_text(encoding="utf-8")):
            if path not in placeholders and not (ROOT / path).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {path}")
    assert missing == []


def test_no_docstring_points_outside_the_repository() -> None:
    offenders = [str(p.relative_to(ROOT)) for folder in ("ffzero_lab", "drivers")
                 for p in sorted((ROOT / folder).rglob("*.py"))
                 if re.search(r"\b(ALGORITHM|HARDWARE)\.md\b", p.read_text(encoding="utf-8"))]
    assert offenders == []
