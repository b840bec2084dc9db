"""Mutation testing of the game core: how many small changes to the rules the core tests notice.

    .venv/bin/python -m tests.mutation            # every module of the core, one worker
    .venv/bin/python -m tests.mutation game       # only src/battles/game.py
    .venv/bin/python -m tests.mutation --record   # and write tests/mutation.json

Each mutant changes one thing in ``game.py``, ``commands.py`` or ``model.py``: a comparison
(``<`` to ``<=``, ``==`` to ``!=``, ``in`` to ``not in``, ...), an arithmetic or boolean operator,
a constant (an integer one up and one down, a string, a boolean), a condition (negated) or a
statement (left out). The core tests (``CORE_TESTS``) run against each in a forked process;
a mutant is killed when they fail (or run past the time limit), and survives when they pass.
The command prints the kill rate per module and every survivor with its line.

Why our own: mutmut 3 mutates only inside functions (through trampolines), so it never
changes a limit of a command or a rule (``Field(ge=5, le=3600)``, ``max_length=300``), which
is most of ``commands.py`` and ``model.py``; cosmic-ray runs a new interpreter per mutant and
edits the sources in place. Here a mutant is compiled from the syntax tree and put in
``sys.modules`` of a forked child before the tests import it: the working tree is never
touched, and a run of the three modules takes minutes on one core.

The run is not part of the test suite (it takes minutes). ``tests/test_mutation.py`` compares
the hash of the core's sources with the one recorded in ``tests/mutation.json``: when the core
changes, that test fails until someone runs this command with ``--record`` and commits the
new kill rates and survivors.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import importlib.util
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = {"game": "src/battles/game.py", "commands": "src/battles/commands.py", "model": "src/battles/model.py"}
CORE_TESTS = ["tests/test_game.py", "tests/test_bounds.py"]
RECORD = ROOT / "tests" / "mutation.json"
# What the children would all import again: the test runner, pydantic, and the parts of the
# package the core does not depend on being mutated (battles.errors).
PRELOADED = ["pytest", "_pytest.python", "_pytest.assertion.rewrite", "_pytest.terminal", "pydantic", "battles.errors"]

COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
OPERATOR_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
# Statements that can be left out one at a time (a function's body keeps a ``pass``).
DROPPABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise, ast.Return, ast.Delete)


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # the position of its site in ``sites``' walk of the module's tree
    line: int
    description: str

    @property
    def where(self) -> str:
        return f"{CORE[self.module]}:{self.line}"


# --- finding the sites ------------------------------------------------------------------------


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _skipped_children(node: ast.AST) -> set[int]:
    """Nodes below ``node`` that are never mutated: type annotations (types, not behaviour),
    docstrings, imports, the parts of f-strings and ``assert`` statements (checks of what
    cannot happen)."""
    skip: list[ast.AST | None] = []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        skip.append(node.returns)
    if isinstance(node, (ast.AnnAssign, ast.arg)):
        skip.append(node.annotation)
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
        skip += [node.body[0]] if _is_docstring(node.body[0]) else []
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.JoinedStr, ast.Assert)):
        skip += list(ast.iter_child_nodes(node))
    return {id(n) for n in skip if n is not None}


def _walk(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that may be mutated, parents before children, in a fixed order."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        skipped = _skipped_children(node)
        children = [child for child in ast.iter_child_nodes(node) if id(child) not in skipped]
        stack.extend(reversed(children))


Apply = Callable[[], None]


def _sites_of(node: ast.AST, parent_body: dict[int, tuple[list[ast.stmt], int]]) -> Iterator[tuple[str, Apply]]:
    """The mutations of one node: (what changes, how to change it in place)."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            swap = COMPARE_SWAP.get(type(op))
            if swap is not None:
                yield f"{_op(op)} -> {_op(swap())}", _setter(node.ops, i, swap())
    elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in OPERATOR_SWAP:
        new = OPERATOR_SWAP[type(node.op)]()
        yield f"{_op(node.op)} -> {_op(new)}", _attr(node, "op", new)
    elif isinstance(node, ast.BoolOp):
        new_bool = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"{_op(node.op)} -> {_op(new_bool)}", _attr(node, "op", new_bool)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        # ``not x`` becomes ``not not x``, ``-x`` becomes ``--x``: the operator cancels out.
        yield f"{_op(node.op)} dropped", _attr(node, "operand", ast.UnaryOp(op=node.op, operand=node.operand))
    elif isinstance(node, ast.Constant):
        yield from _constant_sites(node)
    if isinstance(node, (ast.If, ast.While, ast.IfExp)):
        yield "condition negated", _attr(node, "test", ast.UnaryOp(op=ast.Not(), operand=node.test))
    if isinstance(node, ast.comprehension):
        for i, test in enumerate(node.ifs):
            yield "condition negated", _setter(node.ifs, i, ast.UnaryOp(op=ast.Not(), operand=test))
    if id(node) in parent_body and isinstance(node, DROPPABLE) and not _is_docstring(node):
        body, i = parent_body[id(node)]
        yield "statement left out", _setter(body, i, ast.Pass())


def _constant_sites(node: ast.Constant) -> Iterator[tuple[str, Apply]]:
    value = node.value
    if isinstance(value, bool):
        yield f"{value} -> {not value}", _attr(node, "value", not value)
    elif isinstance(value, int):
        yield f"{value} -> {value + 1}", _attr(node, "value", value + 1)
        yield f"{value} -> {value - 1}", _attr(node, "value", value - 1)
    elif isinstance(value, str):
        yield f"{value!r} -> {'XX' + value + 'XX'!r}", _attr(node, "value", "XX" + value + "XX")


SYMBOLS: dict[type[ast.AST], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.And: "and",
    ast.Or: "or",
    ast.Not: "not",
    ast.USub: "-",
}


def _op(op: ast.AST) -> str:
    return SYMBOLS[type(op)]


def _setter(items: list[ast.stmt] | list[ast.cmpop] | list[ast.expr], index: int, value: ast.AST) -> Apply:
    def apply() -> None:
        items[index] = value  # type: ignore[call-overload]

    return apply


def _attr(node: ast.AST, name: str, value: object) -> Apply:
    return lambda: setattr(node, name, value)


def sites(tree: ast.Module) -> Iterator[tuple[ast.AST, str, Apply]]:
    """Every mutation of ``tree``, in a fixed order (so an index names one mutant)."""
    parent_body: dict[int, tuple[list[ast.stmt], int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for field in ("body", "orelse", "finalbody"):
                body = getattr(node, field, None)
                if body:
                    parent_body.update({id(stmt): (body, i) for i, stmt in enumerate(body)})
    for node in _walk(tree):
        for description, apply in _sites_of(node, parent_body):
            yield node, description, apply


def mutants(module: str, source: str) -> list[Mutant]:
    return [
        Mutant(module, index, getattr(node, "lineno", 0), description)
        for index, (node, description, _) in enumerate(sites(ast.parse(source)))
    ]


def mutated_tree(source: str, index: int) -> ast.Module:
    tree = ast.parse(source)
    for i, (_, _, apply) in enumerate(sites(tree)):
        if i == index:
            apply()
            return ast.fix_missing_locations(tree)
    raise IndexError(index)


# --- running the tests against one mutant -----------------------------------------------------


def _install(mutant: Mutant | None) -> None:
    """Put the mutated module where ``import battles.<module>`` finds it (in this child only)."""
    if mutant is None:
        return
    path = ROOT / CORE[mutant.module]
    code = compile(mutated_tree(path.read_text(), mutant.index), str(path), "exec")
    spec = importlib.util.spec_from_file_location(f"battles.{mutant.module}", path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(code, module.__dict__)


def _child(mutant: Mutant | None) -> int:
    import pytest

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        _install(mutant)
    except Exception:
        return 1  # the core does not even import: every test fails
    args = [*CORE_TESTS, "-x", "-q", "--noconftest", "-p", "no:cacheprovider", "-p", "no:randomly"]
    return int(pytest.main([str(ROOT / arg) if arg.startswith("tests/") else arg for arg in args]))


def _start(mutant: Mutant | None) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child(mutant)
        finally:
            os._exit(code)
    return pid


def run_all(todo: list[Mutant], jobs: int, limit_s: float, report: Callable[[Mutant, str], None]) -> None:
    """Run the tests against every mutant, ``jobs`` at a time; ``report`` hears each verdict."""
    pending = list(reversed(todo))
    running: dict[int, tuple[Mutant, float]] = {}
    while pending or running:
        while pending and len(running) < jobs:
            mutant = pending.pop()
            running[_start(mutant)] = (mutant, time.monotonic())
        time.sleep(0.01)
        for pid, (mutant, started) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del running[pid]
                report(mutant, "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed")
            elif time.monotonic() - started > limit_s:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                del running[pid]
                report(mutant, "timeout")


def baseline_seconds() -> float:
    """Run the unmutated core tests once: they must pass, and their time sets the limit."""
    started = time.monotonic()
    pid = _start(None)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"the core tests fail without any mutant: run pytest {' '.join(CORE_TESTS)}")
    return time.monotonic() - started


def source_hashes() -> dict[str, str]:
    """A digest of each core module's syntax tree: a change of what it does, not of its layout
    or comments (a reformat of the tree does not ask for a new run)."""
    return {
        path: hashlib.sha256(ast.dump(ast.parse((ROOT / path).read_text())).encode()).hexdigest()
        for path in CORE.values()
    }


def _source_line(mutant: Mutant) -> str:
    return (ROOT / CORE[mutant.module]).read_text().splitlines()[mutant.line - 1].strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"the core modules to mutate: {', '.join(CORE)} (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--record", action="store_true", help=f"write the result to {RECORD.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    modules = args.modules or list(CORE)
    if not set(modules) <= set(CORE):
        parser.error(f"the core modules are {', '.join(CORE)}")
    if args.record and modules != list(CORE):
        parser.error("--record needs a run of every module")
    sys.path.insert(0, str(ROOT))
    # Imported once here, so that every forked child shares them; pytest's plugins of other
    # packages (asyncio, hypothesis, playwright, timeout) are not needed by the core tests.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    for name in PRELOADED:
        importlib.import_module(name)

    todo = [m for module in modules for m in mutants(module, (ROOT / CORE[module]).read_text())]
    limit_s = 10 * baseline_seconds() + 5
    print(f"{len(todo)} mutants; the core tests run {CORE_TESTS} against each (time limit {limit_s:.0f} s)")
    verdicts: dict[Mutant, str] = {}
    started = time.monotonic()

    def report(mutant: Mutant, verdict: str) -> None:
        verdicts[mutant] = verdict
        if verdict == "survived":
            print(f"  survived {mutant.where}: {mutant.description}    {_source_line(mutant)}", flush=True)
        if len(verdicts) % 100 == 0:
            print(f"  {len(verdicts)}/{len(todo)} in {time.monotonic() - started:.0f} s", flush=True)

    run_all(todo, args.jobs, limit_s, report)
    rates = {}
    for module in modules:
        mine = [v for m, v in verdicts.items() if m.module == module]
        killed = sum(v != "survived" for v in mine)
        rates[module] = {"mutants": len(mine), "killed": killed, "kill_rate": round(100 * killed / len(mine), 1)}
        print(f"{CORE[module]:28} {killed:4} of {len(mine):4} killed: {rates[module]['kill_rate']}%")
    if args.record:
        survived = sorted(
            (m for m, v in verdicts.items() if v == "survived"), key=lambda m: (CORE[m.module], m.line, m.description)
        )
        survivors = [f"{m.where}: {m.description}" for m in survived]
        record = {"sources": source_hashes(), "tests": CORE_TESTS, "modules": rates, "survivors": survivors}
        RECORD.write_text(json.dumps(record, indent=1) + "\n")
        print(f"written to {RECORD.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
