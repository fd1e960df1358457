"""The modules of src/miad a DVC stage's command runs, derived from the code (an import closure), against its deps.

`miad <command>` dispatches to a handler function in some package's `cli.py`. From that function the closure
follows, statically (`ast`, no import executed): the imports inside the function, the module-level names it uses
(a function of a `cli` module is followed function by function, any other module whole), and from a whole module
every import it makes, at module level or inside a function, plus its packages' `__init__`; a module that loads
others by name (`importlib.import_module` with a computed name) counts as importing every module of its package.
Data files of src/miad that a module names (paper_results.yaml) count too. The numeric pin and the params schema
run before every command (`miad.cli.pin_numeric_environment`), so they belong to every stage.

Not followed, on purpose: `miad.cli` and `miad.cliargs` only parse the command line, and `miad.runtime` only chooses
where the stage runs (natively, or in its image, whose contents docker/images.lock pins); none of them computes
an output. Package `__init__` files that hold only a docstring (and `__version__`) run no code and are left out.

    python -m tests.stage_imports        # per stage: the modules its dvc.yaml deps miss (nothing: all covered)
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
EVERY_COMMAND = ("miad.numeric_env", "miad.config")  # pinned and parsed before any handler runs
DISPATCH_ONLY = ("miad.cli", "miad.cliargs", "miad.runtime")  # parse or choose where; compute nothing


def module_file(name: str) -> Path | None:
    """The source file of module `name` under src/, or None when it is not ours (or does not exist)."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def parse(name: str) -> ast.Module:
    path = module_file(name)
    assert path is not None, name
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def is_package(name: str) -> bool:
    path = module_file(name)
    return path is not None and path.name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(module: str, nodes: Iterable[ast.AST]) -> set[str]:
    """Our modules imported by the import statements among `nodes` (`from pkg import sub` counts `pkg.sub`)."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names if module_file(f"{source}.{alias.name}"))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            found |= dynamic_imports(module, node)
    return {name for name in found if name.split(".")[0] == "miad" and module_file(name)}


def dynamic_imports(module: str, call: ast.Call) -> set[str]:
    """`importlib.import_module(NAME)`: NAME itself when it is a constant, else every module of the caller's
    package (a registry that loads its members by name, like `miad.render.scenarios`)."""
    argument = call.args[0] if call.args else None
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return {argument.value}
    package = module if is_package(module) else module.rsplit(".", 1)[0]
    folder = module_file(package).parent  # type: ignore[union-attr]
    members = (p.relative_to(SRC).with_suffix("") for p in folder.rglob("*.py"))
    return {".".join(m.parts[:-1] if m.name == "__init__" else m.parts) for m in members}


def with_packages(names: Iterable[str]) -> set[str]:
    """`names` and every package above each (importing `a.b.c` runs `a/__init__` and `a/b/__init__`)."""
    out: set[str] = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
    return out


@functools.cache
def module_closure(name: str) -> frozenset[str]:
    """Every module of ours that importing `name` and calling anything in it can run."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or module_file(current) is None:
            continue
        seen.add(current)
        todo.extend(with_packages(imported_modules(current, ast.walk(parse(current)))) - seen)
    return frozenset(seen)


def _module_names(module: str) -> dict[str, tuple[str, str | None]]:
    """{name bound at module level: (module it comes from, attribute or None)} for imports and local defs."""
    names: dict[str, tuple[str, str | None]] = {}
    for node in parse(module).body:
        if isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                names[alias.asname or alias.name] = (sub, None) if module_file(sub) else (source, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names[node.name] = (module, node.name)
    return names


def _is_cli(module: str) -> bool:
    return module.endswith(".cli") or module in DISPATCH_ONLY


def function_closure(module: str, function: str, seen: set[tuple[str, str]] | None = None) -> set[str]:
    """The modules a call of `module.function` can run (functions of `cli` modules followed one by one)."""
    seen = set() if seen is None else seen
    if (module, function) in seen:
        return set()
    seen.add((module, function))
    node = next(n for n in parse(module).body if isinstance(n, ast.FunctionDef) and n.name == function)
    found = {module} - set(DISPATCH_ONLY)
    for name in imported_modules(module, ast.walk(node)):
        found |= module_closure(name)
    bound = _module_names(module)
    for used in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}:
        source, attribute = bound.get(used, ("", None))
        if module_file(source) is None:
            continue
        if _is_cli(source) and attribute is not None:
            if any(isinstance(n, ast.FunctionDef) and n.name == attribute for n in parse(source).body):
                found |= function_closure(source, attribute, seen)
        else:
            found |= module_closure(source)
    return found


def command_modules(command: str) -> set[str]:
    """The modules `miad <command>` runs, less those that only dispatch or hold nothing but a docstring."""
    sys.path.insert(0, str(SRC))
    from miad.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    handler = sub.choices[command].get_default("handler")
    modules = function_closure(handler.__module__, handler.__name__)
    for name in EVERY_COMMAND:
        modules |= module_closure(name)
    return {m for m in with_packages(modules) if not _dispatch_only(m) and not _only_docstring(m)}


def _dispatch_only(module: str) -> bool:
    return any(module == d or module.startswith(d + ".") for d in DISPATCH_ONLY)


def _only_docstring(module: str) -> bool:
    body = parse(module).body
    code = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return all(
        isinstance(n, ast.Assign) and [t.id for t in n.targets if isinstance(t, ast.Name)] == ["__version__"]
        for n in code
    )


def stage_commands(dvc_yaml: Path = REPO / "dvc.yaml") -> dict[str, tuple[str, list[str]]]:
    """{stage: (miad command, deps)} of every stage of dvc.yaml whose command is `miad ...`."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        words = str(body["cmd"]).split()
        if words[0] == "miad":
            out[name] = (words[1], [str(d) for d in body.get("deps", [])])
    return out


def data_files(modules: Iterable[str]) -> set[Path]:
    """The files of src/miad other than code (paper_results.yaml, ...) that one of `modules` names in its source."""
    sources = [module_file(m).read_text(encoding="utf-8") for m in modules]  # type: ignore[union-attr]
    data = (p for p in (SRC / "miad").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))
    return {p for p in data if any(f'"{p.name}"' in text for text in sources)}


def missing_deps(deps: Iterable[str], modules: Iterable[str]) -> list[str]:
    """The source files of `modules`, and the data files they name, that no dep (a file, or a folder above it)
    covers, relative to the repo."""
    modules = list(modules)
    covered = [REPO / d for d in deps]
    paths = {module_file(m) for m in modules} | data_files(modules)
    files = sorted(p.relative_to(REPO).as_posix() for p in paths)  # type: ignore[union-attr]
    return [f for f in files if not any(REPO / f == c or c in (REPO / f).parents for c in covered)]


def main() -> int:
    problems = 0
    for stage, (command, deps) in stage_commands().items():
        missing = missing_deps(deps, command_modules(command))
        problems += bool(missing)
        print(f"{stage} (miad {command}): " + (", ".join(missing) if missing else "every module covered"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
