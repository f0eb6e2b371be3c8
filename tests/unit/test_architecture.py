"""The folder tree is the architecture: imports go one way and no production module grows past its size.

glue (llm_proxy, replay) -> app -> mitm -> pipeline -> {frontends, conversation, routing, stores}
-> {backends, security} -> {settings, records, upstream} -> translators. A module may import its own layer
or any layer below it, never one above, and the import graph has no cycle. backends/specs.py (the
backends' declarations, data only) sits with settings, which reads it. Provider names live only in
backends/ and translators/.
"""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("addons", "translators")
# Longest prefix wins; a lower number is a higher layer.
LAYERS = {
    "addons.llm_proxy": 0,
    "addons.replay": 0,
    "addons.app": 1,
    "addons.mitm": 2,
    "addons.pipeline": 3,
    "addons.frontends": 4,
    "addons.conversation": 4,
    "addons.routing": 4,
    "addons.stores": 4,
    "addons.usage": 4,
    "addons.guards": 4,
    "addons.guards.specs": 6,  # the guards' settings, data only: settings reads them
    "addons.metrics": 4,
    "addons.backends": 5,
    "addons.backends.specs": 6,  # the backends' declarations, data only: settings reads them
    "addons.security": 5,
    "addons.settings": 6,
    "addons.setting_spec": 6,
    "addons.netaddr": 6,
    "addons.records": 6,
    "addons.budgets": 6,  # pure: limits, windows, the admission rule; settings and stores read it
    "addons.upstream": 6,
    "translators": 7,
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS (and to README's Architecture)"
    return LAYERS[best]


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    # `from addons import app` names a module; `from addons.app import build` names a function in one.
    # The package roots themselves (empty __init__) are no layer.
    return {m for m in found if m in known and m != name and m not in PACKAGES}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items() if name not in PACKAGES}


def test_imports_go_one_way() -> None:
    reversed_arrows = [
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, targets in graph().items()
        for dst in targets
        if layer(dst) < layer(src) and not src.startswith(dst + ".")
    ]
    assert not reversed_arrows, "\n".join(reversed_arrows)


def test_the_import_graph_has_no_cycle() -> None:
    g = {src: {d for d in dsts if not src.startswith(d + ".")} for src, dsts in graph().items()}
    graphlib.TopologicalSorter(g).prepare()  # raises CycleError naming the cycle


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if (n := len(text.splitlines())) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, "\n".join(too_long)


PROVIDER = re.compile(r"openrouter|gemini|google", re.IGNORECASE)
PROVIDER_HOMES = ("addons.backends", "translators")


def _docstrings(tree: ast.AST) -> set[int]:
    """Docstrings may name a provider as an example; they are prose, not knowledge the code acts on."""
    kinds = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _names_in(node: ast.AST) -> list[str]:
    match node:
        case ast.Constant(value=str() as text):
            return [text]
        case ast.Name(id=name) | ast.Attribute(attr=name) | ast.arg(arg=name) | ast.alias(name=name):
            return [name]
        case ast.keyword(arg=str() as name) | ast.ImportFrom(module=str() as name):
            return [name]
        case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name) | ast.ClassDef(name=name):
            return [name]
    return []


def test_no_provider_name_outside_backends_and_translators() -> None:
    found = []
    for name, path in modules().items():
        if any(name == home or name.startswith(home + ".") for home in PROVIDER_HOMES):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            found += [
                f"{name}:{getattr(node, 'lineno', '?')}: {text!r}"
                for text in _names_in(node)
                if PROVIDER.search(text)
            ]
    assert not found, "provider names belong in addons/backends/ (ask its registry):\n" + "\n".join(found)


def test_stores_are_constructed_only_by_the_composition_root() -> None:
    """Nothing but app.py chooses a store: the rest of the code talks to the interfaces in stores/base.py."""
    mods = modules()
    store_classes = {
        node.name
        for name, path in mods.items()
        if name.startswith("addons.stores.") and name != "addons.stores.base"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    }
    assert store_classes, "no store implementations found"
    constructed = [
        f"{name}:{node.lineno} constructs {node.func.id}"
        for name, path in mods.items()
        if name != "addons.app" and not name.startswith("addons.stores.")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in store_classes
    ]
    assert not constructed, "\n".join(constructed)
