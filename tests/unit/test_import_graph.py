"""No import cycles in the package as it installs (jobs/, schemas/, connectors/ under genai_apm).

Every import counts, at module level or inside a function: a function-level import only moves
a cycle to run time, where it fails half-initialised. Imports under ``if TYPE_CHECKING:`` do
not count: they never run (with ``from __future__ import annotations`` they only name types).
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def installed_sources(root: Path = ROOT) -> dict[str, str]:
    """Installed module name -> its source, from pyproject's package-dir mapping."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    sources: dict[str, str] = {}
    # the longest directory first, so genai_apm/ does not claim what another name maps
    for name, directory in sorted(mapping.items(), key=lambda item: -len(item[1])):
        base = root / directory
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            sources.setdefault(".".join([name, *parts]), path.read_text(encoding="utf-8"))
    return sources


def _runtime_imports(tree: ast.Module):
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for statement in node.body for n in ast.walk(statement)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped:
            yield node


def import_graph(sources: dict[str, str], packages: set[str]) -> dict[str, set[str]]:
    """module -> the modules of ``sources`` it imports (``from p import m`` imports p.m)."""
    graph: dict[str, set[str]] = {}
    for module, text in sources.items():
        targets = []
        for node in _runtime_imports(ast.parse(text)):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
                continue
            base = node.module or ""
            if node.level:
                parts = module.split(".") if module in packages else module.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            targets += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        found = set()
        for target in targets:
            while target and target not in sources:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
        graph[module] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(graph: dict[str, set[str]], component: list[str]) -> str:
    members = set(component)
    return "\n".join(f"  {m} -> {', '.join(sorted(graph[m] & members))}" for m in component)


def _packages(sources: dict[str, str]) -> set[str]:
    return {m for m in sources if any(other.startswith(m + ".") for other in sources)}


def test_the_installed_package_has_no_import_cycle():
    sources = installed_sources()
    assert "genai_apm.jobs.runner" in sources and "genai_apm.schemas.contract" in sources
    graph = import_graph(sources, _packages(sources))
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n\n".join(_describe(graph, c) for c in found)


def test_an_introduced_cycle_is_found():
    """The same check on the real tree with one import added that closes a circle
    (errors is imported by the settings; the settings then reached from errors)."""
    sources = installed_sources()
    sources["genai_apm.errors"] += (
        "\n\ndef _late():\n    from genai_apm.settings.config import Settings\n"
    )
    graph = import_graph(sources, _packages(sources))
    found = cycles(graph)
    assert any({"genai_apm.errors", "genai_apm.settings.config"} <= set(c) for c in found), found


def test_relative_and_package_imports_resolve():
    sources = {
        "p": "from p import a\n",
        "p.a": "from . import b\nfrom .b import thing\n",
        "p.b": "import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import p.a\n",
    }
    graph = import_graph(sources, {"p"})
    assert graph == {"p": {"p.a"}, "p.a": {"p", "p.b"}, "p.b": set()}
    assert cycles(graph) == [["p", "p.a"]]
