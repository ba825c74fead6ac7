"""kit/ reads as the pipeline: no import circles, no upward imports, a small ground floor, and ARCHITECTURE.md true.

The import graph is built from the source with ``ast`` (module-level and function-level imports alike, so a
circle hidden inside a function counts), never by importing the kit.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "kit"

# The stages, lowest first: a module may import its own stage or a lower one, never a higher one.
# ARCHITECTURE.md states the same order; test_architecture_md_names_the_stages_in_this_order keeps them together.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ground", ("kit", "kit.errors", "kit.paths", "kit.runtime", "kit.runinfo", "kit.plots", "kit.bootstrap")),
    ("formatting", ("kit.formatting",)),
    ("rewards", ("kit.rewards",)),
    ("data", ("kit.data",)),
    ("builders", ("kit.builders",)),
    ("training", ("kit.training",)),
    ("evaluation", ("kit.evaluation",)),
    ("export", ("kit.export",)),
    ("notebooks", ("kit.notebooks",)),
    ("batch", ("kit.batch",)),
    ("cli", ("kit.cli", "kit.__main__")),
)
MAX_TOP_LEVEL_MODULES = 8  # __init__.py and __main__.py included


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def kit_modules() -> dict[str, Path]:
    """Every module of kit/ (the sample-data scripts are data, not kit modules)."""
    found = {}
    for path in sorted(KIT.rglob("*.py")):
        if "_sample_data" not in path.parts and "__pycache__" not in path.parts:
            found[module_name(path)] = path
    return found


def _imported(node: ast.AST, name: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The kit modules one import statement names (``from pkg import submodule`` names the submodule)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = name.split(".") if is_package else name.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    else:
        return []
    found = []
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target.split(".")[0] == "kit":
            found.append(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the kit modules it imports anywhere in its source (not itself)."""
    modules = kit_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            edges.update(_imported(node, name, path.name == "__init__.py", modules))
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def stage_of(module: str) -> int:
    """The position of ``module``'s stage in :data:`STAGES` (the longest matching prefix wins)."""
    best, rank = -1, -1
    for position, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), position
    if rank < 0:
        raise AssertionError(f"{module} is in no stage: add it to STAGES and ARCHITECTURE.md")
    return rank


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{src} ({STAGES[stage_of(src)][0]}) imports {dst} ({STAGES[stage_of(dst)][0]})"
                  for src, targets in graph.items() for dst in targets if stage_of(dst) > stage_of(src))


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    assert "kit.errors" in graph["kit.paths"]  # imported inside a function there
    assert "kit.data.files" in graph["kit.builders.tiny"]


def test_a_circle_is_found() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert find_cycles(import_graph()) == []


def test_lower_stages_never_import_higher_ones() -> None:
    assert upward_imports(import_graph()) == []


def test_every_module_has_a_stage() -> None:
    for module in import_graph():
        stage_of(module)


def test_the_ground_floor_is_small() -> None:
    top = sorted(p.name for p in KIT.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_every_package_says_what_it_offers() -> None:
    for init in sorted(KIT.rglob("__init__.py")):
        if "_sample_data" in init.parts:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{init.relative_to(ROOT)} needs a docstring naming what the package offers"


def test_architecture_md_is_short_and_names_real_folders() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 80
    named = set(re.findall(r"`(kit/[\w./]*?)/?`", text))
    assert len(named) >= 10, named
    missing = [path for path in sorted(named) if not (ROOT / path).exists()]
    assert not missing, f"ARCHITECTURE.md names what does not exist: {missing}"
    packages = {f"kit/{init.parent.name}" for init in KIT.glob("*/__init__.py")}
    assert packages <= named, f"ARCHITECTURE.md does not name {sorted(packages - named)}"


def test_architecture_md_names_the_stages_in_this_order() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    order = re.search(r"^Import order[^\n]*:\s*(.+)$", text, re.M)
    assert order, "ARCHITECTURE.md needs a line 'Import order (lowest first): ground < ...'"
    assert [s.strip() for s in order.group(1).split("<")] == [name for name, _ in STAGES]


if __name__ == "__main__":  # python tests/test_architecture.py: print what is wrong now
    g = import_graph()
    for group in find_cycles(g):
        print("CYCLE", " <-> ".join(group))
    for line in upward_imports(g):
        print("UP", line)
