"""The house rules that hold for every module: no function too tangled to follow.

radon's cyclomatic complexity of every function, method and closure in ``src/battles``
(nested ones included) stays at 20 or below: radon's grade C. Past it, split the
function where its concerns part (a pure decision and the I/O around it, one
scenario each), not where the count happens to drop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Class, Function

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "battles"
MOST = 20  # radon's grade C ends here


def functions(blocks: list[Function | Class], within: str = "") -> Iterator[tuple[str, Function]]:
    """Every function in ``blocks`` with its dotted name: methods of classes and their
    inner classes, closures of functions and methods, to any depth."""
    for block in blocks:
        name = f"{within}{block.name}"
        if isinstance(block, Class):
            yield from functions([*block.methods, *block.inner_classes], f"{name}.")
        else:
            yield name, block
            yield from functions(block.closures, f"{name}.")


def top_level(source: str) -> list[Function | Class]:
    """The module's own functions and classes: ``cc_visit`` also lists every method
    beside its class, and they are reached through their class here."""
    return [block for block in cc_visit(source) if isinstance(block, Class) or not block.is_method]


def test_the_walk_reaches_methods_of_inner_classes_and_closures_of_closures() -> None:
    source = (
        "def outer(x):\n"
        "    def inner(y):\n"
        "        def innermost(z):\n"
        "            return 1 if z else 2\n"
        "        return innermost\n"
        "    return inner\n"
        "class Outer:\n"
        "    class Inner:\n"
        "        def method(self, a):\n"
        "            def helper(b):\n"
        "                return b or a\n"
        "            return helper\n"
    )
    found = {name: block.complexity for name, block in functions(top_level(source))}
    assert found == {
        "outer": 1,
        "outer.inner": 1,
        "outer.inner.innermost": 2,
        "Outer.Inner.method": 1,
        "Outer.Inner.method.helper": 2,
    }


def test_no_function_in_the_package_is_above_complexity_20() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20, f"no modules found under {PACKAGE}"
    tangled = [
        f"{path.relative_to(PACKAGE.parent)}:{block.lineno} {name} ({block.complexity})"
        for path in modules
        for name, block in functions(top_level(path.read_text()))
        if block.complexity > MOST
    ]
    assert not tangled, f"above complexity {MOST} (radon cc; split them):\n" + "\n".join(tangled)


MOST_LINES = 250  # a class longer than this holds more than one concern: split it


def test_no_class_in_the_package_is_longer_than_250_lines() -> None:
    """A class of one concern reads in one sitting; the stores are split by concern
    (docs/architecture.md, "Stores"). Nested classes count on their own too."""
    long = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and (lines := (node.end_lineno or node.lineno) - node.lineno + 1) > MOST_LINES
    ]
    assert not long, f"longer than {MOST_LINES} lines (split them by concern):\n" + "\n".join(long)
