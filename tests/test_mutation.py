"""The mutation test of the core (tests/mutation.py): its record is of the current core, and
its mutants are the ones it promises. The run itself takes minutes and is not part of the suite."""

from __future__ import annotations

import ast
import json

from tests import mutation

SAMPLE = '''"""A module docstring is never mutated."""
LIMIT: int = 10


def decide(a: int, b: list[int]) -> bool:
    """Nor a function's."""
    assert a >= 0
    total = a + 1
    if total < LIMIT and a in b:
        return -total
    return not f"{a}" == "x"
'''


def descriptions(source: str) -> list[tuple[int, str]]:
    return [(m.line, m.description) for m in mutation.mutants("game", source)]


def test_the_recorded_mutation_run_is_of_the_current_core() -> None:
    record = json.loads(mutation.RECORD.read_text())
    changed = [path for path, digest in mutation.source_hashes().items() if record["sources"].get(path) != digest]
    assert not changed, (
        f"{', '.join(changed)} changed since the last mutation run: run "
        "`.venv/bin/python -m tests.mutation --record`, read its survivors (add the tests they call for), "
        "and commit tests/mutation.json"
    )
    assert record["tests"] == mutation.CORE_TESTS
    assert set(record["modules"]) == set(mutation.CORE)


def test_every_comparison_operator_constant_condition_and_statement_is_mutated() -> None:
    assert descriptions(SAMPLE) == [
        (2, "10 -> 11"),
        (2, "10 -> 9"),
        (8, "statement left out"),
        (8, "+ -> -"),
        (8, "1 -> 2"),
        (8, "1 -> 0"),
        (9, "condition negated"),
        (9, "and -> or"),
        (9, "< -> <="),
        (9, "in -> not in"),
        (10, "statement left out"),
        (10, "- dropped"),
        (11, "statement left out"),
        (11, "not dropped"),
        (11, "== -> !="),
        (11, "'x' -> 'XXxXX'"),
    ]


def test_docstrings_annotations_asserts_and_f_strings_are_left_alone() -> None:
    lines = {line for line, _ in descriptions(SAMPLE)}
    # 1: the module's docstring, 5: annotations only, 6: a docstring, 7: an assert.
    assert lines.isdisjoint({1, 5, 6, 7})
    assert all("'{a}'" not in description for _, description in descriptions(SAMPLE))


def test_each_mutant_changes_its_one_site_and_compiles() -> None:
    original = ast.dump(ast.parse(SAMPLE))
    seen = set()
    for index, mutant in enumerate(mutation.mutants("game", SAMPLE)):
        tree = mutation.mutated_tree(SAMPLE, index)
        compile(tree, "sample.py", "exec")
        changed = ast.dump(tree)
        assert changed != original, mutant
        seen.add(changed)
    assert len(seen) == len(mutation.mutants("game", SAMPLE)), "two mutants made the same change"


def decide(tree: ast.Module) -> object:
    namespace: dict[str, object] = {}
    exec(compile(tree, "sample.py", "exec"), namespace)
    function = namespace["decide"]
    assert callable(function)
    return function(9, [9])


def test_a_mutant_behaves_as_described() -> None:
    (index,) = [i for i, m in enumerate(mutation.mutants("game", SAMPLE)) if m.description == "< -> <="]
    # total = 10 is not < LIMIT, but it is <= LIMIT in the mutant, which returns -total.
    assert decide(ast.parse(SAMPLE)) is True
    assert decide(mutation.mutated_tree(SAMPLE, index)) == -10


def test_the_annotations_of_arguments_are_left_alone() -> None:
    assert descriptions("def f(a: int | None = 1) -> int | str:\n    return a\n") == [
        (1, "1 -> 2"),
        (1, "1 -> 0"),
        (2, "statement left out"),
    ]
