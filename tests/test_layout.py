"""The package's layout is its architecture: layers that import only downwards, no cycles.

Read from the code's own import statements (every one: at the top, inside functions, under
``TYPE_CHECKING``), so a deferred import cannot hide a cycle or an arrow back up. The layers,
lowest first, are the folders of ``src/django_litestream`` (DEVELOPERS.md, "Where things are").
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "django_litestream"
NAME = "django_litestream"

# Lowest first. A module may import its own unit or a lower layer's, never a higher one.
# ``conf`` is the configuration's Django adapter (the one reader of django.conf.settings),
# so it stands with config/ although it lives at the top, where Django's conventions put it.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "text"}),
    frozenset({"litestream"}),
    frozenset({"replica"}),
    frozenset({"config", "conf"}),
    frozenset({"vfs"}),
    frozenset({"serve"}),
    frozenset({"ops"}),
)
# Everything else at the top is a face that users or Django import: the highest layer.
FACES = frozenset(
    {
        "__init__",
        "__main__",
        "apps",
        "checks",
        "db",
        "management",
        "middleware",
        "readwrite",
        "routers",
        "urls",
        "views",
    }
)
# Modules that may import Django: the faces, the settings' reader, and the read replicas'
# Django side. Everything else (the supervisor above all) runs without Django.
DJANGO_ALLOWED = FACES | {
    "conf",
    "vfs.backend",
    "vfs.freshness",
    "vfs.status",
    "vfs.timetravel",
}


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name relative to it (``config.build``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path], package: str = NAME) -> Iterator[str]:
    """The package's modules that ``name`` imports (relative to the package), every one."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    if name == "__init__":
        here = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                module = ".".join([package, *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" for a in node.names] + [module]
        else:
            continue
        for target in targets:
            if target == package or not target.startswith(f"{package}."):
                continue
            relative = target[len(package) + 1 :]
            if relative in known and has_code(known[relative]):
                yield relative


def has_code(path: Path) -> bool:
    """A module, or a package whose ``__init__`` holds more than its docstring."""
    if path.name != "__init__.py":
        return True
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def unit(name: str) -> str:
    return name.split(".")[0]


def layer(name: str) -> int:
    first = unit(name)
    if first in FACES:
        return len(LAYERS)
    for i, units in enumerate(LAYERS):
        if first in units:
            return i
    raise AssertionError(f"{name} is in no layer: add its folder to LAYERS in {__file__}")


def graph(root: Path = PACKAGE, package: str = NAME) -> dict[str, set[str]]:
    known = modules(root)
    return {name: set(imports(name, path, known, package)) - {name} for name, path in known.items()}


def upward(edges: dict[str, set[str]]) -> list[str]:
    return [
        f"{name} -> {target}"
        for name, targets in edges.items()
        for target in sorted(targets)
        if layer(target) > layer(name)
    ]


def test_every_module_is_in_a_layer() -> None:
    for name in modules():
        layer(name)


def test_no_import_runs_up_a_layer() -> None:
    found = upward(graph())
    assert not found, "imports from a lower layer to a higher one: " + "; ".join(found)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules() -> None:
    assert _cycles(graph()) == []


def test_no_import_cycle_between_folders() -> None:
    folders: dict[str, set[str]] = {}
    for name, targets in graph().items():
        folders.setdefault(unit(name), set()).update(
            unit(t) for t in targets if unit(t) != unit(name)
        )
    assert _cycles(folders) == []


@pytest.mark.parametrize("name", sorted(set(modules())))
def test_no_django_below_the_faces(name: str) -> None:
    """config/, litestream/, replica/, serve/, ops/ and the leaves run without Django."""
    if name in DJANGO_ALLOWED or unit(name) in FACES:
        return
    tree = ast.parse(modules()[name].read_text())
    django = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if (
            isinstance(node, ast.Import)
            and any(a.name.split(".")[0] == "django" for a in node.names)
        )
        or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "django")
    ]
    assert not django, f"{name} imports Django ({'; '.join(django)}); it must not"


def test_the_checker_sees_deferred_imports_cycles_and_arrows_up(tmp_path: Path) -> None:
    """A small package of its own, with what the real one must never have: the walk sees it."""
    root = tmp_path / "pkg"
    (root / "config").mkdir(parents=True)
    (root / "serve").mkdir()
    for init in (
        root / "__init__.py",
        root / "config" / "__init__.py",
        root / "serve" / "__init__.py",
    ):
        init.write_text("")
    (root / "config" / "build.py").write_text("def f():\n    from ..serve import launch\n")
    (root / "serve" / "launch.py").write_text("from ..config import build\n")
    edges = graph(root, "pkg")
    assert edges["config.build"] == {"serve.launch"}
    assert edges["serve.launch"] == {"config.build"}
    assert upward(edges) == ["config.build -> serve.launch"]
    assert _cycles(edges) == [["config.build", "serve.launch"]]
