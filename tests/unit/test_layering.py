"""The import graph of src/tmc follows the layer table below and has no cycles.

Every module is parsed with `ast` (nothing is imported), so the check is fast and sees imports that only run inside
functions. Imports under `if TYPE_CHECKING:` do not count: they never run. docs/architecture.md explains the layers.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# Lowest first. A module may import its own package and the packages of lower layers, never a package of its own
# layer or of a higher one. A module's package is the longest entry that prefixes its name; "tmc" is only the root
# module `tmc/__init__.py`, so a new package fails the check until it is given a layer here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("tmc", "tmc.apimachinery", "tmc.observability"),
    ("tmc.storage", "tmc.api"),
    ("tmc.runtime", "tmc.protocol"),
    ("tmc.registry", "tmc.client"),
    ("tmc.apiserver", "tmc.controllers", "tmc.syncer"),
    ("tmc.sim",),
    ("tmc.server", "tmc.docsgen"),
    ("tmc.cli",),
    # The dashboard builds on the CLI's flags, resources and actions; the CLI names it only as a lazy command.
    ("tmc.tui",),
)

# Lower packages that a package still must not import.
FORBIDDEN: Mapping[str, frozenset[str]] = {
    # The syncer reaches the hub and its member cluster only over their APIs, like any out-of-process client.
    "tmc.syncer": frozenset({"tmc.registry"}),
    # The simulated cluster is controllers over the registry; the API server in front of it is wired in tmc.server.
    "tmc.sim": frozenset({"tmc.apiserver", "tmc.syncer"}),
}

# Entry points outside the layers: `python -m tmc` runs the CLI.
ENTRY_POINTS: frozenset[str] = frozenset({"tmc.__main__"})

PACKAGES: dict[str, int] = {package: level for level, names in enumerate(LAYERS) for package in names}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: str
    line: int

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those in the body of `if TYPE_CHECKING:`."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[tuple[str, str]]:
    """(base, name) pairs: `import a.b` gives ("a.b", ""), `from a import b` gives ("a", "b")."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, ""
        return
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        anchor = package.split(".")
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        yield base, alias.name


def parse_imports(source: str, module: str, path: str, is_package: bool, modules: set[str]) -> list[Import]:
    """The tmc modules `module` imports. `from x import y` is module `x.y` when that is a module, else module `x`."""
    found: list[Import] = []
    for node in _import_nodes([ast.parse(source, path)]):
        for base, name in _imported_names(node, module, is_package):
            target = f"{base}.{name}" if name and f"{base}.{name}" in modules else base
            if target == "tmc" or target.startswith("tmc."):
                found.append(Import(module, target, path, node.lineno))
    return sorted(found, key=lambda i: i.line)


def build_graph(src: Path) -> tuple[set[str], list[Import]]:
    files = sorted((src / "tmc").rglob("*.py"))
    modules = {module_name(f, src) for f in files}
    imports: list[Import] = []
    for f in files:
        rel = f.relative_to(src.parent).as_posix()
        imports += parse_imports(f.read_text(), module_name(f, src), rel, f.name == "__init__.py", modules)
    return modules, imports


def package_of(module: str) -> str | None:
    if module == "tmc":
        return module
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in PACKAGES:
            return ".".join(parts[:n])
    return None


def layer_violations(modules: Iterable[str], imports: Iterable[Import]) -> list[str]:
    problems = [
        f"{m}: in no layer; add its package to LAYERS in tests/unit/test_layering.py"
        for m in sorted(modules)
        if m not in ENTRY_POINTS and package_of(m) is None
    ]
    for imp in imports:
        if imp.importer in ENTRY_POINTS:
            continue
        src, dst = package_of(imp.importer), package_of(imp.imported)
        if src is None or dst is None or src == dst:
            continue
        rule = ""
        if dst in FORBIDDEN.get(src, frozenset()):
            rule = f"{src} must not import {dst}"
        elif PACKAGES[dst] == PACKAGES[src]:
            rule = f"{src} and {dst} are both in layer {PACKAGES[src] + 1}; neither may import the other"
        elif PACKAGES[dst] > PACKAGES[src]:
            rule = f"{src} (layer {PACKAGES[src] + 1}) may not import the higher {dst} (layer {PACKAGES[dst] + 1})"
        if rule:
            problems.append(f"{imp.where()}: {imp.importer} -> {imp.imported}: {rule}")
    return problems


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components with more than one module or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.get(step, ())))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return found


def import_cycles(modules: set[str], imports: Iterable[Import]) -> list[str]:
    """One line per cycle: the shortest cycle through the first module of each strongly connected component."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    first: dict[tuple[str, str], Import] = {}
    for imp in imports:
        if imp.imported in modules:
            graph[imp.importer].add(imp.imported)
            first.setdefault((imp.importer, imp.imported), imp)
    problems = []
    for component in strongly_connected(graph):
        members = set(component)
        start = component[0]
        came_from: dict[str, str] = {}
        queue = deque([start])
        while queue:  # breadth-first back to `start` inside the component
            node = queue.popleft()
            if start in graph[node]:
                came_from.setdefault(start, node)
                break
            for nxt in sorted(graph[node] & members):
                if nxt not in came_from and nxt != start:
                    came_from[nxt] = node
                    queue.append(nxt)
        path = [start]
        while (prev := came_from[path[-1]]) != start:
            path.append(prev)
        path.append(start)
        path.reverse()
        hops = [f"{a} -> {b} ({first[(a, b)].where()})" for a, b in pairwise(path)]
        problems.append(f"cycle among {', '.join(component)}: " + "; ".join(hops))
    return problems


def test_src_follows_the_layers_and_has_no_cycles() -> None:
    modules, imports = build_graph(SRC)
    assert len(modules) > 50 and imports, "src/tmc was not found or not parsed"
    problems = layer_violations(modules, imports) + import_cycles(modules, imports)
    assert not problems, "import rules broken (see LAYERS in tests/unit/test_layering.py):\n" + "\n".join(problems)


def test_the_checker_reports_upward_imports_cycles_and_unlayered_packages(tmp_path: Path) -> None:
    """A fake tree with one of each mistake, so the real check cannot pass by seeing nothing."""
    files = {
        "tmc/__init__.py": "",
        "tmc/__main__.py": "from tmc.cli import main\n",
        "tmc/storage/__init__.py": "from .sqlite import Store\n",
        "tmc/storage/sqlite.py": "from . import CompactedError\n\ndef open():\n    from tmc.apiserver import VERSION\n",
        "tmc/apiserver/__init__.py": "",
        "tmc/apiserver/server.py": "from . import handlers\nfrom tmc.storage import Store\n",
        "tmc/apiserver/handlers.py": "import tmc.apiserver.server\n",
        "tmc/syncer/agent.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tmc.controllers import gc\n"
            "from tmc.registry.service import ObjectService\n"
        ),
        "tmc/cli/__init__.py": "from tmc.controllers import gc\n",
        "tmc/controllers/gc.py": "from tmc.cli import main\nfrom tmc.syncer import agent\n",
        "tmc/widgets/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_text(text)
    modules, imports = build_graph(tmp_path / "src")
    edges = {(i.importer, i.imported) for i in imports}
    assert ("tmc.syncer.agent", "tmc.controllers.gc") not in edges  # TYPE_CHECKING only
    assert ("tmc.apiserver.server", "tmc.apiserver.handlers") in edges  # relative import of a module
    assert ("tmc.storage", "tmc.storage.sqlite") in edges  # relative import in a package's __init__
    assert ("tmc.storage.sqlite", "tmc.storage") in edges  # relative import of a name, in a module
    assert ("tmc.storage.sqlite", "tmc.apiserver") in edges  # function-local imports count

    layers = layer_violations(modules, imports)
    assert layers == [
        "tmc.widgets: in no layer; add its package to LAYERS in tests/unit/test_layering.py",
        "src/tmc/controllers/gc.py:1: tmc.controllers.gc -> tmc.cli: tmc.controllers (layer 5) may not import the "
        "higher tmc.cli (layer 8)",
        "src/tmc/controllers/gc.py:2: tmc.controllers.gc -> tmc.syncer.agent: tmc.controllers and tmc.syncer are "
        "both in layer 5; neither may import the other",
        "src/tmc/storage/sqlite.py:4: tmc.storage.sqlite -> tmc.apiserver: tmc.storage (layer 2) may not import "
        "the higher tmc.apiserver (layer 5)",
        "src/tmc/syncer/agent.py:4: tmc.syncer.agent -> tmc.registry.service: tmc.syncer must not import tmc.registry",
    ]
    assert sorted(import_cycles(modules, imports)) == [
        "cycle among tmc.apiserver.handlers, tmc.apiserver.server: "
        "tmc.apiserver.handlers -> tmc.apiserver.server (src/tmc/apiserver/handlers.py:1); "
        "tmc.apiserver.server -> tmc.apiserver.handlers (src/tmc/apiserver/server.py:1)",
        "cycle among tmc.cli, tmc.controllers.gc: tmc.cli -> tmc.controllers.gc (src/tmc/cli/__init__.py:1); "
        "tmc.controllers.gc -> tmc.cli (src/tmc/controllers/gc.py:1)",
        "cycle among tmc.storage, tmc.storage.sqlite: "
        "tmc.storage -> tmc.storage.sqlite (src/tmc/storage/__init__.py:1); "
        "tmc.storage.sqlite -> tmc.storage (src/tmc/storage/sqlite.py:1)",
    ]
