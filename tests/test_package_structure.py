"""The package import graph: private modules stay private, and the domain core has no import cycle.

A node is a package directly under `meshgate` (`identity`, `oauth`, …) or a top-level module
(`runtime`, `app`, `errors`, …); `meshgate/__init__.py` is the node `meshgate`. Every import counts,
including those inside functions and under `TYPE_CHECKING`: a dependency for types is still one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import meshgate

SOURCE = Path(meshgate.__file__).parent

# Packages whose imports must form no cycle among themselves. The rest (app, runtime, http, proxy,
# virtual, mcp, dashboard) is the composition layer, reworked separately; its cycles are printed only.
CORE = frozenset(
    {
        "identity",
        "oauth",
        "connections",
        "access",
        "db",
        "vault",
        "errors",
        "monitoring",
        "mail",
        "auth_config",
        "email_address",
    }
)


@dataclass(frozen=True, slots=True)
class Import:
    importer: str  # dotted module name, e.g. "meshgate.oauth.service"
    imported: str  # dotted module name, e.g. "meshgate.identity._rows"

    @property
    def edge(self) -> tuple[str, str]:
        return node_of(self.importer), node_of(self.imported)


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted: str) -> bool:
    """Whether a dotted name under `meshgate` is a module or package (rather than a name defined in one)."""
    relative = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (SOURCE / relative).with_suffix(".py").is_file() or (SOURCE / relative / "__init__.py").is_file()


def node_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imported_modules(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names if alias.name.split(".")[0] == "meshgate")
        return
    if node.level or node.module is None or node.module.split(".")[0] != "meshgate":
        return
    yield node.module
    # `from meshgate.identity import _rows` imports the module `meshgate.identity._rows`.
    for alias in node.names:
        if is_module(f"{node.module}.{alias.name}"):
            yield f"{node.module}.{alias.name}"


@cache
def all_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for path in sorted(SOURCE.rglob("*.py")):
        importer = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.extend(Import(importer, imported) for imported in imported_modules(node))
    return tuple(found)


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for found in all_imports():
        source, target = found.edge
        graph.setdefault(source, set())
        graph.setdefault(target, set())
        if source != target:
            graph[source].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Components of mutually reachable nodes with more than one member (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def is_private(module: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in module.split(".")[2:])


def test_from_package_import_module_counts_as_importing_that_module() -> None:
    statement = ast.parse("from meshgate.identity import _rows, service").body[0]
    assert isinstance(statement, ast.ImportFrom)
    assert list(imported_modules(statement)) == [
        "meshgate.identity",
        "meshgate.identity._rows",
        "meshgate.identity.service",
    ]


def test_graph_has_a_node_per_package_and_top_level_module() -> None:
    graph = package_graph()
    assert {"identity", "oauth", "connections", "runtime", "errors"} <= graph.keys()
    assert "identity" in graph["runtime"]


def test_no_private_module_is_imported_from_another_package() -> None:
    crossing = sorted(
        (found.importer, found.imported)
        for found in all_imports()
        if is_private(found.imported) and node_of(found.importer) != node_of(found.imported)
    )
    assert not crossing, f"private modules imported from another package: {crossing}"


def test_identity_does_not_import_oauth() -> None:
    # The authenticator takes an `AccessTokenVerifier`; oauth implements it and depends on identity.
    assert "oauth" not in package_graph()["identity"]


def test_connections_does_not_import_oauth() -> None:
    # Upstream OAuth tokens belong to the connection registry; the OAuth client flow depends on connections.
    assert "oauth" not in package_graph()["connections"]


def test_core_packages_form_no_import_cycle() -> None:
    graph = package_graph()
    core = {node: graph[node] & CORE for node in CORE if node in graph}
    cycles = strongly_connected(core)
    remaining = strongly_connected(graph)
    print(f"import cycles outside the core (information): {[sorted(c) for c in remaining]}")
    assert not cycles, f"import cycles among {sorted(CORE)}: {[sorted(c) for c in cycles]}"


def test_the_call_service_knows_no_transport() -> None:
    # Every adapter depends on the call pipeline, never the other way round; and it sees no HTTP request.
    assert not package_graph()["calls"] & {"http", "proxy", "virtual", "dashboard", "mcp", "app", "runtime"}
    third_party = {found.imported.split(".")[0] for found in all_imports_of_third_parties("calls")}
    assert "starlette" not in third_party


def test_adapters_are_composed_not_handed_the_runtime() -> None:
    assert "runtime" not in package_graph()["proxy"] and "runtime" not in package_graph()["calls"]


def all_imports_of_third_parties(package: str) -> Iterator[Import]:
    root = Path(meshgate.__file__).parent / package
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            yield from (Import(module_name(path), name) for name in names if not name.startswith("meshgate"))
