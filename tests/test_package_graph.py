"""The import graph of the three packages: no eager cycle, layers only import downwards, SB3 optional.

The graph is read from the source with :mod:`ast`, so it sees every import, not only those one
run happens to execute. An import is *eager* when it runs at import time (module level, class
bodies, ``try`` blocks), *lazy* inside a function, and *type-only* under ``if TYPE_CHECKING:``.
Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``; those edges are added unless
the package is the importer itself or one of its parents (already being imported then).

Run as a script to print the numbers: ``python tests/test_package_graph.py [ROOT]``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGES = ("noise_envs", "agents", "evaluation")
"""The layers, lowest first: each may import only from those before it."""
ROOT = Path(__file__).resolve().parents[1]
KINDS = ("eager", "lazy", "type")

Graph = dict[str, dict[str, set[str]]]
"""``{module: {kind: {imported module, ...}}}``; outside modules keep their top-level name."""


def module_files(root: Path) -> dict[str, Path]:
    """Every module of :data:`PACKAGES` under ``root``, by dotted name."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Each import statement with its kind."""

    def visit(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, kind
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, "lazy" if kind == "eager" else kind)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for statement in child.body:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), "type")
                for statement in child.orelse:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), kind)
            else:
                yield from visit(child, kind)

    yield from visit(tree, "eager")


def _targets(node: ast.Import | ast.ImportFrom, importer: str, modules: set[str], is_package: bool):
    """The modules an import statement names: the most specific known module per name."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = importer.split(".") if is_package else importer.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names
        ]
    for name in names:
        parts = name.split(".")
        if parts[0] not in PACKAGES:
            yield parts[0]
            continue
        while ".".join(parts) not in modules and len(parts) > 1:
            parts.pop()
        yield ".".join(parts)


def _with_parents(target: str, importer: str) -> list[str]:
    """``target`` and the packages above it that importing it runs, less the importer's own."""
    parts = target.split(".")
    chain = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    own = {".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 2)}
    return [name for name in chain if name == target or name not in own]


def build_graph(root: Path = ROOT) -> Graph:
    """The import graph of the packages under ``root``."""
    files = module_files(root)
    modules = set(files)
    graph: Graph = {name: {kind: set() for kind in KINDS} for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, kind in _imports(tree):
            for target in _targets(node, name, modules, path.name == "__init__.py"):
                for edge in _with_parents(target, name) if target in modules else [target]:
                    if edge != name:
                        graph[name][kind].add(edge)
    return graph


def cycles(graph: Graph, kinds: tuple[str, ...] = ("eager",)) -> list[list[str]]:
    """The strongly connected components of more than one module, over imports of ``kinds``."""
    edges = {
        name: {t for kind in kinds for t in imports[kind] if t in graph}
        for name, imports in graph.items()
    }
    reach = {name: _reachable(edges, name) for name in edges}
    components = {
        tuple(sorted(other for other in reach[name] if name in reach[other])) for name in edges
    }
    return sorted(list(component) for component in components if len(component) > 1)


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    """The modules reachable from ``start`` in one or more steps."""
    seen: set[str] = set()
    todo = list(edges[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges[name])
    return seen


def layer_violations(graph: Graph) -> list[str]:
    """Imports (of any kind) from a higher layer, as ``"importer -> imported (kind)"``."""
    rank = {package: level for level, package in enumerate(PACKAGES)}
    return [
        f"{name} -> {target} ({kind})"
        for name, imports in sorted(graph.items())
        for kind in KINDS
        for target in sorted(imports[kind])
        if rank.get(target.split(".")[0], -1) > rank[name.split(".")[0]]
    ]


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph()


def test_the_graph_sees_the_package(graph):
    """Known edges of each kind are found: an eager one, an implicit parent package, a lazy one."""
    assert "agents.noise" in graph["agents.ctrnn"]["eager"]
    cli_common = graph["evaluation.cli._common"]
    assert {"agents", "agents.runs"} <= cli_common["eager"] | cli_common["lazy"]
    assert "torch" in graph["agents.ctrnn"]["eager"]
    assert any(graph[name]["lazy"] for name in graph)
    assert len(graph) > 40


def test_cycle_finder_on_a_hand_made_graph():
    """a -> b -> c -> a is one cycle and d -> a is not part of it; lazy edges only count when
    asked for."""
    empty = {kind: set() for kind in KINDS}
    toy = {
        "a": {**empty, "eager": {"b"}},
        "b": {**empty, "eager": {"c"}},
        "c": {**empty, "eager": {"a"}, "lazy": {"d"}},
        "d": {**empty, "eager": {"a", "numpy"}},
    }
    assert cycles(toy) == [["a", "b", "c"]]
    assert cycles(toy, ("eager", "lazy")) == [["a", "b", "c", "d"]]


def test_no_eager_import_cycle(graph):
    """Cycles may only close through lazy or type-only imports."""
    assert cycles(graph) == []


KNOWN_LAZY_CYCLES: list[list[str]] = []
"""Cycles that close through a function-level import, still to remove (none: TrainConfig moved to
agents.train_config, so agents.runs no longer imports agents.supervised)."""


def test_no_new_cycle_through_lazy_imports(graph):
    """Counting imports inside functions, no cycle beyond the known ones (type-only imports may
    still close cycles)."""
    assert cycles(graph, ("eager", "lazy")) == KNOWN_LAZY_CYCLES


def test_layers_import_only_downwards(graph):
    """noise_envs imports nothing from agents or evaluation; agents nothing from evaluation;
    not even lazily or for type checking."""
    assert layer_violations(graph) == []


def test_agents_never_imports_its_sb3_package_eagerly(graph):
    """Outside agents.sb3, nothing in agents imports agents.sb3 at import time."""
    eager = {
        name: sorted(t for t in imports["eager"] if t.startswith("agents.sb3"))
        for name, imports in graph.items()
        if name.startswith("agents") and not name.startswith("agents.sb3")
    }
    assert {name: targets for name, targets in eager.items() if targets} == {}


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter at the project root; its stdout."""
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_importing_the_packages_does_not_import_stable_baselines3():
    """``import noise_envs, agents, agents.sb3, evaluation`` leaves SB3 and sb3-contrib
    unimported."""
    out = run_python(
        """
        import sys
        import noise_envs, agents, agents.sb3, evaluation
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in
                        ("stable_baselines3", "sb3_contrib"))
        print(loaded)
        """
    )
    assert out.strip() == "[]"


def test_agents_work_without_stable_baselines3():
    """With stable-baselines3 and sb3-contrib made unimportable, agents still imports, builds a
    CTRNN from the registry, and trains it for two iterations; an SB3 name says what to install."""
    out = run_python(
        """
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("stable_baselines3", "sb3_contrib"):
                    raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
                return None

        sys.meta_path.insert(0, Block())
        import agents, agents.sb3, noise_envs
        task = noise_envs.make_task("NoisyRegulator-v0", steps=6, settle_steps=2)
        model = agents.build_model(
            "ctrnn", {"input_size": 1, "output_size": 1, "hidden_size": 4}
        )
        config = agents.TrainConfig(iterations=2, batch_size=4, checkpoint_every=1)
        result = agents.train(model, task, config, progress=False)
        print(len(result.history))
        try:
            agents.sb3.train_rl
        except ImportError as error:
            print("rl extra" if "noise-preference[rl]" in str(error) else error)
        """
    )
    assert out.split() == ["2", "rl", "extra"]


def _summary(root: Path) -> str:
    graph = build_graph(root)
    eager = cycles(graph)
    with_lazy = cycles(graph, ("eager", "lazy"))
    lines = [
        f"{root}: {len(graph)} modules, "
        f"{sum(len(i['eager'] & graph.keys()) for i in graph.values())} eager internal edges",
        f"eager cycles: {len(eager)} ({', '.join(str(len(c)) for c in eager) or '-'} modules)",
        *(f"  {' '.join(c)}" for c in eager),
        f"cycles with lazy imports: {len(with_lazy)} "
        f"({', '.join(str(len(c)) for c in with_lazy) or '-'} modules)",
        *(f"  {' '.join(c)}" for c in with_lazy),
        f"layer violations: {layer_violations(graph) or 'none'}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(_summary(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT))
