"""Code identity: a digest of the code a step runs, read from the code itself.

A step's code is its function in ``steps.py``, the ``Step`` class and the module-level helpers there, and
every ``fnlib`` module they import, followed import by import (anywhere in a module, function-level imports
included). Nobody keeps that list by hand: an edit to ``hardware.autocast`` reaches training's identity
because ``train.py`` imports ``hardware``.

Each file is hashed as its parsed code (:mod:`ast`), not as text: comments, docstrings, blank lines and
formatting do not count; a changed number, name or operator does. Fields that newer Pythons add to the
syntax tree empty (``type_params=[]``) are left out, so the digest does not change with the interpreter.

``profiles`` and ``steptable`` are configuration: what a step reads of them enters its key by value (the
profile fields it declares, its notebook), so they are not followed; nor is this module, which computes
identities and nothing of a result. ``steps.py`` is hashed without the
other steps' functions, so an edit to one step leaves the others alone.
"""
from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CONFIG = frozenset({"profiles", "steptable", "codeid"})     # read by value (or computing keys): never followed


def _drop_docstring(body: list) -> list:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:]
    return body


def canonical(node) -> str:
    """The code of ``node`` as text, without docstrings, positions or empty fields."""
    if isinstance(node, list):
        return "[" + ",".join(canonical(n) for n in node) + "]"
    if not isinstance(node, ast.AST):
        return repr(node)
    parts = []
    for name, value in ast.iter_fields(node):
        if name == "body" and isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            value = _drop_docstring(value)
        if value is None or value == []:
            continue
        parts.append(f"{name}={canonical(value)}")
    return f"{type(node).__name__}(" + ",".join(parts) + ")"


@functools.lru_cache(maxsize=None)
def _parse(path: str, mtime_ns: int) -> ast.Module:
    return ast.parse(Path(path).read_text())


def files(module: str) -> list[Path]:
    """The source files of ``module``: ``fnlib/<module>.py``, or every file of the package ``fnlib/<module>/``."""
    path = PACKAGE / f"{module}.py"
    if path.exists():
        return [path]
    if (PACKAGE / module / "__init__.py").exists():
        return sorted((PACKAGE / module).glob("*.py"))
    raise ValueError(f"fnlib has no module {module!r} ({path})")


def parse(module: str) -> ast.Module:
    """The parsed code of ``module`` (a package: its files' statements, one after the other)."""
    trees = [_parse(str(f), f.stat().st_mtime_ns) for f in files(module)]
    if len(trees) == 1:
        return trees[0]
    return ast.Module(body=[n for t in trees for n in _drop_docstring(t.body)], type_ignores=[])


def imports(nodes) -> set[str]:
    """The ``fnlib`` modules that ``nodes`` import (``from .x import y``, ``from . import x``, ``import fnlib.x``)."""
    found = set()
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.ImportFrom):
                if n.level == 1 and n.module:
                    found.add(n.module.split(".")[0])
                elif n.level == 1:
                    found.update(a.name for a in n.names)
                elif n.level == 0 and (n.module or "").startswith("fnlib."):
                    found.add(n.module.split(".")[1])
            elif isinstance(n, ast.Import):
                found.update(a.name.split(".")[1] for a in n.names if a.name.startswith("fnlib."))
    return {m for m in found if (PACKAGE / f"{m}.py").exists() or (PACKAGE / m / "__init__.py").exists()}


def step_nodes(function: str) -> list:
    """``steps.py`` without the functions of the other steps: this step's function, ``Step``, the helpers, and any
    other step's function that this one calls (step 13 runs step 4's), followed call by call."""
    from .steptable import STEPS
    body = _drop_docstring(parse("steps").body)
    defs = {n.name: n for n in body if isinstance(n, ast.FunctionDef)}
    if function not in defs:
        raise ValueError(f"fnlib/steps.py has no function {function!r}")
    step_functions = {s.function for s in STEPS.values()}
    keep, todo = {function}, [function]
    while todo:
        for n in ast.walk(defs[todo.pop()]):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in step_functions - keep:
                keep.add(n.func.id)
                todo.append(n.func.id)
    return [n for n in body if not (isinstance(n, ast.FunctionDef) and n.name in step_functions - keep)]


def closure(function: str) -> list[str]:
    """The ``fnlib`` modules that step ``function`` runs, followed import by import (configuration left out)."""
    todo, seen = set(imports(step_nodes(function))) - CONFIG - {"steps"}, set()
    while todo:
        m = todo.pop()
        seen.add(m)
        todo |= imports([parse(m)]) - CONFIG - seen - {"steps"}
    return sorted(seen)


def digest(function: str) -> str:
    """sha256 (20 hex) of step ``function``'s code: its part of ``steps.py`` and :func:`closure`, as parsed code."""
    h = hashlib.sha256(canonical(step_nodes(function)).encode())
    for m in closure(function):
        h.update(f"\0{m}\0".encode())
        h.update(canonical(parse(m)).encode())
    return h.hexdigest()[:20]
