"""The walls between modules, checked on the source (AST), so that the layout stays the picture of record.

- no import cycle between modules: every ``import`` and ``from … import`` counts, at module level or
  inside a function; only ``if TYPE_CHECKING:`` blocks are exempt (they never run);
- no module imports a ``_private`` name from another module, nor reaches for ``module._name``: what
  is shared is public in the module that owns it;
- a subpackage's ``__init__.py`` only describes it (a docstring): it imports nothing, so importing
  one module of a stage never loads the others, and no name has two homes;
- a module's ``__all__`` names only what the module itself defines (one home per name), except the
  package's public surface, ``provision/__init__.py``;
- ``provision/`` holds at most 8 modules beside its stage packages;
- the public surface of ``provision`` is exactly the names below (as httpx's ``test_exported_members``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import provision

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("provision", "preprocess")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module


def _modules(roots: tuple[str, ...] = PACKAGES) -> dict[str, Module]:
    out = {}
    for root in roots:
        for path in sorted((REPO / root).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            name = ".".join(parts)
            out[name] = Module(name, path, is_package, ast.parse(path.read_text(encoding="utf-8")))
    return out


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Ids of every node inside an ``if TYPE_CHECKING:`` block."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skip.update(id(n) for n in ast.walk(inner))
    return skip


def _absolute(mod: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported from
    name: str | None  # the name taken (None for 'import x')
    line: int


def _imports(mod: Module, modules: dict[str, Module]) -> Iterator[Import]:
    """Every import of ``mod`` that names one of our modules, outside ``if TYPE_CHECKING:``."""
    skip = _type_checking_nodes(mod.tree)
    for node in ast.walk(mod.tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield Import(mod.name, alias.name, None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(mod, node)
            if target not in modules:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:  # 'from pkg import module'
                    yield Import(mod.name, sub, None, node.lineno)
                else:
                    yield Import(mod.name, target, alias.name, node.lineno)


def _graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for mod in modules.values():
        for imp in _imports(mod, modules):
            if imp.target != mod.name:
                graph[mod.name].add(imp.target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_the_walls_test_sees_a_cycle_and_a_private_import(tmp_path: Path) -> None:
    """The checks themselves: a two-module cycle through a function-level import, and a private name."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""doc"""\n')
    (pkg / "a.py").write_text("from pkg.b import thing\n_hidden = 1\n")
    (pkg / "b.py").write_text("def thing():\n    from pkg.a import _hidden\n    return _hidden\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import _hidden\n")
    modules = {}
    for path in sorted(pkg.glob("*.py")):
        name = "pkg" if path.stem == "__init__" else f"pkg.{path.stem}"
        modules[name] = Module(name, path, path.stem == "__init__", ast.parse(path.read_text()))
    assert _cycles(_graph(modules)) == [["pkg.a", "pkg.b"]]
    private = [i for m in modules.values() for i in _imports(m, modules) if i.name and _private(i.name)]
    assert [(i.source, i.name) for i in private] == [("pkg.b", "_hidden")]  # c's TYPE_CHECKING import is exempt


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph(MODULES))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_private_names_cross_modules() -> None:
    """Neither ``from m import _x`` nor ``m._x`` on an imported module, in the package, tests or benchmarks."""
    everything = {**MODULES, **_modules(("tests", "benchmarks"))}
    ours = set(MODULES)
    bad = []
    for mod in everything.values():
        skip = _type_checking_nodes(mod.tree)
        module_aliases: dict[str, str] = {}
        for imp in _imports(mod, {**everything, **{m: MODULES[m] for m in ours}}):
            if imp.name is not None and _private(imp.name) and imp.target in ours:
                bad.append(f"{mod.path.relative_to(REPO)}:{imp.line}: imports {imp.name} from {imp.target}")
        for node in ast.walk(mod.tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                target = _absolute(mod, node)
                for alias in node.names:
                    if f"{target}.{alias.name}" in ours:
                        module_aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in ours:  # 'import a.b' binds 'a'; 'import a.b as m' binds 'm'
                        bound = alias.asname or alias.name.split(".")[0]
                        module_aliases[bound] = alias.name if alias.asname else bound
        for node in ast.walk(mod.tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
                and _private(node.attr)
            ):
                where = f"{mod.path.relative_to(REPO)}:{node.lineno}"
                bad.append(f"{where}: uses {module_aliases[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", sorted(n for n, m in MODULES.items() if m.is_package and n not in PACKAGES))
def test_subpackage_init_only_describes(name: str) -> None:
    body = MODULES[name].tree.body
    assert body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), f"{name}: no docstring"
    assert len(body) == 1, f"{name}/__init__.py holds code; put it in a module of its own"


def test_all_names_only_what_the_module_defines() -> None:
    bad = []
    for mod in MODULES.values():
        if mod.name in PACKAGES:
            continue
        defined: set[str] = set()
        exported: list[str] = []
        for node in mod.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        defined.add(leaf.id)
                if isinstance(target, ast.Name) and target.id == "__all__" and node.value is not None:
                    exported = list(ast.literal_eval(node.value))
        bad += [f"{mod.name}: __all__ names {n!r}, defined elsewhere" for n in exported if n not in defined]
    assert not bad, "\n".join(bad)


def test_top_level_holds_at_most_eight_modules() -> None:
    top = sorted(p.name for p in (REPO / "provision").glob("*.py"))
    assert len(top) <= 8, top


#: The public surface of ``import provision``: the api functions, Settings, the errors, the version.
EXPORTED = [
    "EXIT_ACCURACY",
    "EXIT_FAILURE",
    "EXIT_INTEGRITY",
    "EXIT_MANIFEST",
    "EXIT_OK",
    "EXIT_SOURCE",
    "EXIT_USAGE",
    "AccuracyError",
    "DiskSpaceError",
    "IntegrityError",
    "LockTimeoutError",
    "ManifestError",
    "MissingDependencyError",
    "ModelError",
    "NotFetchedError",
    "OfflineError",
    "ProvisionError",
    "Settings",
    "SourceError",
    "UnknownNameError",
    "UsageError",
    "__version__",
    "audit",
    "audit_diff",
    "demo",
    "describe",
    "doctor",
    "fetch",
    "gc",
    "harness",
    "hash_paths",
    "hash_trees",
    "lint",
    "list_entries",
    "load",
    "path",
    "preprocess",
    "preprocessed_path",
    "run",
    "status",
    "validate",
    "verify",
]


def test_exported_members() -> None:
    """``provision.__all__`` is the pinned list, every name in it exists, and nothing public is left out."""
    assert sorted(provision.__all__) == sorted(EXPORTED)
    public = {n for n in vars(provision) if not n.startswith("_") or n == "__version__"}
    public -= {"annotations"}  # from __future__
    public -= {n for n, v in vars(provision).items() if type(v).__name__ == "module"}  # submodules, once imported
    assert public == set(EXPORTED)
    for name in EXPORTED:
        value = getattr(provision, name)
        module = getattr(value, "__module__", "provision")
        assert module.startswith("provision"), (name, module)


def test_no_module_shadows_a_public_name() -> None:
    """Importing ``provision.x.y`` binds ``provision.x`` to the module: a subpackage named like an api
    function (``fetch``, ``audit``) would replace ``provision.fetch`` the moment anything imported it."""
    children = {p.stem if p.is_file() else p.name for p in (REPO / "provision").iterdir() if not p.name.startswith("_")}
    clash = sorted(children & set(EXPORTED))
    assert not clash, clash


def _decides_by_text(node: ast.AST) -> bool:
    """``"x" in exc.answer``, ``exc.answer.startswith(...)``, ``re.match(p, exc.answer)`` and the same on
    ``str(exc)`` inside an ``except`` block: a decision taken on an exception's message text."""

    def is_text(expr: ast.AST, caught: set[str]) -> bool:
        if isinstance(expr, ast.Attribute) and expr.attr == "answer":
            return True
        return (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Name)
            and expr.func.id == "str"
            and len(expr.args) == 1
            and isinstance(expr.args[0], ast.Name)
            and expr.args[0].id in caught
        )

    caught = {h.name for h in ast.walk(node) if isinstance(h, ast.ExceptHandler) and h.name}
    for sub in ast.walk(node):
        in_text = isinstance(sub, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in sub.ops)
        if in_text and any(is_text(c, caught) for c in sub.comparators):  # type: ignore[attr-defined]
            return True
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
            if sub.func.attr in ("startswith", "endswith") and is_text(sub.func.value, caught):
                return True
            if sub.func.attr in ("match", "search", "fullmatch") and any(is_text(a, caught) for a in sub.args):
                return True
    return False


def test_failures_are_sorted_by_type_not_text() -> None:
    """No module of the package decides what a failure was by reading its message."""
    bad = [m.name for m in MODULES.values() if _decides_by_text(m.tree)]
    assert not bad, bad
    assert _decides_by_text(ast.parse("try:\n    f()\nexcept E as exc:\n    if 'x' in str(exc):\n        pass\n"))
    assert _decides_by_text(ast.parse("ok = all('OFFLINE' in a.answer for a in xs)"))
