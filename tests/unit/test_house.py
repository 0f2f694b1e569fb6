"""The house rules of DESIGN.md, read statically from the source: layers, import cycles, module sizes.

Every ``import`` in a module counts, at module level or inside a function, so an import moved into a function
to dodge a cycle is still a cycle here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "surf_dist"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {
    name: {m for m in _imports(path) if m in MODULES and m != name and not name.startswith(m + ".")}
    for name, path in MODULES.items()
}


def _cycle() -> list[str] | None:
    """One import cycle among the package's modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(GRAPH[v]):
            if state.get(w) == 1:
                return stack[stack.index(w) :] + [w]
            if w not in state and (found := visit(w)):
                return found
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(GRAPH):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_cycle() -> None:
    """Catches two modules that import each other, directly or around a loop (function-level imports too)."""
    assert _cycle() is None, " -> ".join(_cycle() or [])


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("surf_dist.core", ("surf_dist.comm", "surf_dist.runtime", "surf_dist.train", "torch.distributed", "ray")),
        (
            "surf_dist.comm",
            ("surf_dist.runtime", "surf_dist.train", "surf_dist.train.session", "surf_dist.config", "ray"),
        ),
        ("surf_dist.graph", ("surf_dist.comm", "surf_dist.runtime", "surf_dist.train", "surf_dist.config")),
        ("surf_dist.data", ("surf_dist.comm", "surf_dist.runtime", "surf_dist.train", "surf_dist.config")),
    ],
)
def test_dependencies_run_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    """Catches the math importing processes, or the message layer importing the training job."""
    bad = sorted(
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name == layer or name.startswith(layer + ".")
        for imported in _imports(path)
        if any(imported == f or imported.startswith(f + ".") for f in forbidden)
    )
    assert not bad, "\n".join(bad)


def test_no_module_over_400_lines() -> None:
    """Catches a module growing past one job."""
    long = {name: n for name, path in MODULES.items() if (n := path.read_text().count("\n")) > MAX_LINES}
    assert not long, long


def test_nothing_needs_a_folder_beside_the_checkout() -> None:
    """Catches a test, the README or CI reaching for ``../shared`` (a user's clone has none beside it, so those
    checks would be skipped or fail)."""
    root = PACKAGE.parent
    files = [root / "README.md", root / ".ci" / "run", root / "Makefile", *root.glob("launch/*")]
    files += [p for p in (root / "tests").rglob("*.py") if p != Path(__file__).resolve()]
    needle = "/".join(("..", "shared"))
    bad = sorted(str(p.relative_to(root)) for p in files if p.is_file() and needle in p.read_text())
    assert not bad, f"these files use {needle}: {bad}"
