"""Package seams: no private cross-package imports, no import cycles between packages.

Walks every module of ``src/funnelrec`` with ``ast`` (no import side effects). A package is
the first name under ``funnelrec`` (``funnelrec.recall.x`` -> ``recall``); top-level modules
(``funnelrec.types``...) are the core, which every package may use.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "funnelrec"
CORE = "<core>"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2:
        return CORE
    if len(parts) == 2 and not (ROOT / parts[1]).is_dir():
        return CORE
    return parts[1]


def _imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [n for n in names if n == "funnelrec" or n.startswith("funnelrec.")]


def _is_private(name: str) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in name.split(".")[1:])


def _scan() -> tuple[list[tuple[str, str]], dict[str, set[str]]]:
    """(private cross-package imports as (importer, imported), package -> imported packages)."""
    private: list[tuple[str, str]] = []
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        source = _package(module)
        for name in _imported(ast.parse(path.read_text(), filename=str(path))):
            target = _package(name)
            if target == source:
                continue
            if _is_private(name):
                private.append((module, name))
            if CORE not in (source, target):
                edges[source].add(target)
    return private, edges


def _cycles(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Every edge ``a -> b`` such that ``b`` reaches ``a`` again."""

    def reaches(start: str, goal: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            for nxt in edges.get(stack.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    return [(a, b) for a in sorted(edges) for b in sorted(edges[a]) if reaches(b, a)]


def test_scanner_sees_the_packages() -> None:
    _, edges = _scan()
    assert "recall" in edges and "train" in edges["recall"]


def test_no_private_cross_package_imports() -> None:
    private, _ = _scan()
    assert private == [], "\n".join(f"{a} imports {b}" for a, b in private)


def test_no_cycles_between_packages() -> None:
    _, edges = _scan()
    cycles = _cycles(edges)
    assert cycles == [], "\n".join(f"{a} -> {b} (and back)" for a, b in cycles)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}}, []),
        ({"a": {"b"}, "b": {"a"}}, [("a", "b"), ("b", "a")]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [("a", "b"), ("b", "c"), ("c", "a")]),
    ],
)
def test_cycle_finder(edges: dict[str, set[str]], expected: list[tuple[str, str]]) -> None:
    assert _cycles(edges) == expected


def test_private_detector() -> None:
    assert _is_private("funnelrec.recall._embedding")
    assert _is_private("funnelrec.rank.multitask._default_tasks")
    assert not _is_private("funnelrec.recall.base")
    assert not _is_private("funnelrec.data.__init__")
