"""The house rules (docs/development.md), read statically from the source: layers, import cycles, module sizes.

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
    tree = ast.parse(path.read_text())
    type_only = {  # ``if TYPE_CHECKING:`` imports are for annotations: no dependency when the code runs
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
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


CORE_BUT_COMPRESSION = tuple(
    name
    for name in MODULES
    if name.startswith("surf_dist.core") and name not in ("surf_dist.core", "surf_dist.core.compression")
)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        (
            "surf_dist.core",
            ("surf_dist.comm", "surf_dist.runtime", "surf_dist.worker", "surf_dist.data", "torch.distributed", "ray"),
        ),
        # the Mixer is the math seam: no training job, no config, and neither the network model nor its emulator
        ("surf_dist.comm", ("surf_dist.runtime", "surf_dist.worker", "surf_dist.config", "surf_dist.network", "ray")),
        ("surf_dist.graph", ("surf_dist.comm", "surf_dist.runtime", "surf_dist.worker", "surf_dist.config")),
        ("surf_dist.data", ("surf_dist.comm", "surf_dist.runtime", "surf_dist.worker", "surf_dist.config")),
        # methods are written against the round context only; registries and settings import nothing heavy
        # (a method may build a codec, ``core.compression``, which imports torch only when it compresses)
        (
            "surf_dist.methods",
            ("surf_dist.comm", "surf_dist.runtime", "surf_dist.worker", "torch", *CORE_BUT_COMPRESSION),
        ),
        ("surf_dist.plugins", ("torch", "numpy", "surf_dist.config", "surf_dist.worker", "surf_dist.runtime")),
        # inside a worker: the jobs see a Mixer, never a backend or a process (runtime builds the concrete one)
        (
            "surf_dist.worker",
            (
                "surf_dist.runtime.launch",
                "surf_dist.runtime.supervisor",
                "surf_dist.runtime.torch_launch",
                "surf_dist.runtime.ray_driver",
                "surf_dist.comm.local",
                "surf_dist.comm.torch_mixer",
                "surf_dist.analysis",
                "ray",
            ),
        ),
        ("surf_dist.rundir", ("surf_dist.worker", "surf_dist.runtime.launch", "surf_dist.analysis")),
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


def test_top_level_modules_are_the_entry_points_only() -> None:
    """Catches a module added at the top of the package instead of in the package of when it runs (inside a worker:
    train; writing the run directory: rundir; on finished runs: analysis; processes: runtime)."""
    allowed = {"__init__.py", "__main__.py", "api.py", "errors.py"}
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in allowed)
    assert not top, top
    assert (PACKAGE / "cli" / "__init__.py").exists()


def test_no_per_name_method_table_outside_the_registry() -> None:
    """Catches a method's name switched on outside its own module (an if-chain or a table keyed by method name in
    evaluate, tune, the time model or the ledger): the code must read the registered object."""
    import re

    from surf_dist.plugins import METHODS

    names = set(METHODS.names()) - {"local"}  # also the name of the local backend
    # the paper's own numbers and colours are keyed by the methods the paper ran; presets set their settings and
    # the schema names the default methods
    exempt = ("surf_dist/methods/", "surf_dist/paper/", "surf_dist/config/")
    found = []
    for path in MODULES.values():
        rel = str(path.relative_to(PACKAGE.parent))
        if rel.startswith(exempt):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
            elif isinstance(node, ast.Compare):
                text = ast.unparse(node)
                if re.search(r"==\s*['\"](" + "|".join(names) + r")['\"]", text):
                    found.append(f"{rel}:{node.lineno}: {text}")
    assert not found, "\n".join(found)


def test_parsing_and_validation_import_neither_torch_nor_matplotlib() -> None:
    """Catches `surf-dist --help` or a mistyped --set paying for torch (about 3 s and 700 MB here)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from surf_dist.cli import main\n"
        "assert main(['train', '--preset', 'smoke', '--set', 'model.num_layrs=2', '--out', '/nonexistent/x']) == 2\n"
        "from surf_dist.config import load_config\n"
        "load_config('default', None, ['eval.dgd_step=0.5', 'data.dataset=digits'])\n"
        "heavy = sorted(m for m in ('torch', 'matplotlib', 'ray') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


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


def test_documents_cite_only_what_a_clone_holds() -> None:
    """Catches the README, docs/, code or tests citing documents that do not ship with the project (the team's own
    design and paper notes), or links into docs/ that lead nowhere."""
    import re

    root = PACKAGE.parent
    texts = [root / "README.md", *root.glob("docs/*.md"), *PACKAGE.rglob("*.py"), *(root / "tests").rglob("*.py")]
    foreign = ("PAPER" + ".md", "DESIGN" + ".md", "STYLE" + ".md")
    bad = sorted(f"{p.relative_to(root)}: {name}" for p in texts for name in foreign if name in p.read_text())
    assert not bad, bad
    for page in [root / "README.md", *root.glob("docs/*.md")]:
        for target in re.findall(r"\]\(([^)#]+\.(?:md|png))", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(root)} links to {target}, which does not exist"
