"""The page scripts (static/**/*.js) are ES modules: every name a script uses is its own,
imported, or the browser's.

A module that uses a helper it does not import fails only when that line runs (a
ReferenceError), which a rare branch may never do under the browser tests; an import of a
name that no module exports fails every page that loads it (tests/test_browser.py,
test_every_page_asks_for_all_its_modules_at_once). This reads the scripts with the
tree-sitter JavaScript grammar and holds the first too, and that nothing is imported unused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter_javascript
from playwright.sync_api import sync_playwright
from tree_sitter import Language, Node, Parser

from battles import rooms
from tests.browser import launch

STATIC = Path(__file__).resolve().parents[1] / "static"
SCRIPTS = sorted(path.relative_to(STATIC).as_posix() for path in STATIC.rglob("*.js"))
PARSER = Parser(Language(tree_sitter_javascript.language()))

# Every global name of Debian's Chromium: on window and its prototypes (EventTarget's
# addEventListener...), and the language's own (Object, Intl, undefined...).
BROWSER_GLOBALS = """() => {
  const names = new Set();
  for (let scope = window; scope; scope = Object.getPrototypeOf(scope)) {
    for (const name of Object.getOwnPropertyNames(scope)) names.add(name);
  }
  return [...names];
}"""

# Nodes that declare names, and the fields holding what they declare.
DECLARING_FIELDS = {
    "variable_declarator": ("name",),
    "function_declaration": ("name",),
    "function_expression": ("name",),
    "generator_function_declaration": ("name",),
    "class_declaration": ("name",),
    "class": ("name",),
    "arrow_function": ("parameter",),
    "catch_clause": ("parameter",),
    "for_in_statement": ("left",),
}


@pytest.fixture(scope="module")
def browser_globals() -> set[str]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        names = set(browser.new_page().evaluate(BROWSER_GLOBALS))
        browser.close()
    return names


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.named_children:
        yield from walk(child)


def bound(pattern: Node | None) -> Iterator[str]:
    """The names a binding pattern declares: `x`, `{ a, b: c, ...d }`, `[e, f = 1]`."""
    if pattern is None:
        return
    if pattern.type in ("identifier", "shorthand_property_identifier_pattern"):
        yield text(pattern)
    elif pattern.type in ("object_pattern", "array_pattern", "rest_pattern", "formal_parameters"):
        for child in pattern.named_children:
            yield from bound(child)
    elif pattern.type == "pair_pattern":
        yield from bound(pattern.child_by_field_name("value"))
    elif pattern.type in ("assignment_pattern", "object_assignment_pattern"):
        yield from bound(pattern.child_by_field_name("left"))


def text(node: Node) -> str:
    return (node.text or b"").decode()


def imported(root: Node) -> set[str]:
    """The names the module's imports bind: `{ a, b as c }`, `* as d`, a default `e`."""
    names = set()
    for node in walk(root):
        if node.type == "import_specifier":
            names.add(text(node.child_by_field_name("alias") or node.child_by_field_name("name") or node))
        elif node.type == "namespace_import":
            names.add(text(node.named_children[0]))
        elif node.type == "identifier" and node.parent is not None and node.parent.type == "import_clause":
            names.add(text(node))
    return names


def declared(root: Node) -> set[str]:
    """Every name the module declares anywhere, whatever its scope (enough to find a helper
    used without its import: a page script declares none of the shared ones)."""
    names = set()
    for node in walk(root):
        for name in DECLARING_FIELDS.get(node.type, ()):
            names.update(bound(node.child_by_field_name(name)))
        if node.type == "formal_parameters":
            names.update(bound(node))
    return names


def uses(root: Node) -> Counter[str]:
    """How often each name is read or written outside the import lines."""
    return Counter(
        text(node)
        for node in walk(root)
        if node.type in ("identifier", "shorthand_property_identifier")
        and not (
            node.parent is not None and node.parent.type in ("import_specifier", "namespace_import", "import_clause")
        )
    )


def parsed(script: str) -> Node:
    tree = PARSER.parse((STATIC / script).read_bytes())
    assert not tree.root_node.has_error, f"{script} does not parse"
    return tree.root_node


# A page script longer than this is split by concern into modules of its folder, as the
# console, the phone and the screen are (static/host/, docs/architecture.md, Clients).
MOST_LINES = 500


def lines(script: str) -> int:
    return len((STATIC / script).read_text().splitlines())


def test_the_scripts_are_found() -> None:
    assert {"audience.js", "client/i18n.js", "client/live.js"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_name_a_script_uses_is_its_own_imported_or_the_browsers(script: str, browser_globals: set[str]) -> None:
    root = parsed(script)
    unknown = set(uses(root)) - imported(root) - declared(root) - browser_globals
    assert not unknown, f"static/{script} uses names it neither declares nor imports: {sorted(unknown)}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_imports_only_what_it_uses(script: str) -> None:
    root = parsed(script)
    counts = uses(root)
    unused = {name for name in imported(root) if not counts[name]}
    assert not unused, f"static/{script} imports names it never uses: {sorted(unused)}"


def test_no_page_script_is_longer_than_500_lines() -> None:
    long = {script: lines(script) for script in SCRIPTS if lines(script) > MOST_LINES}
    assert not long, f"split these by concern (static/host/ shows how): {long}"


def test_no_page_script_keeps_a_copy_of_the_servers_close_codes() -> None:
    # They come from the welcome (docs/protocol.md, `welcome`, close_codes): a copy in a
    # page would drift from the server unseen.
    codes = {str(code) for code in (rooms.CLOSE_RESTART, rooms.CLOSE_REVOKED, rooms.CLOSE_REPLACED)}
    copies = [
        f"static/{script}:{node.start_point.row + 1}: {text(node.parent)}"
        for script in SCRIPTS
        for node in walk(parsed(script))
        if node.type == "number" and text(node) in codes
    ]
    assert not copies, "read these from the welcome instead:\n" + "\n".join(copies)
