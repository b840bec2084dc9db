"""patches.diff: its patches are RFC 6902, checked with another implementation (jsonpatch)."""

from __future__ import annotations

from typing import Any

import jsonpatch
from hypothesis import given
from hypothesis import strategies as st

from battles.patches import diff

# JSON values, with member names that need escaping in a JSON Pointer (RFC 6901).
scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=3)
keys = st.sampled_from(["a", "b", "~", "/", "a/b~1", ""])
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=20
)


@given(documents, documents)
def test_a_patch_turns_the_old_document_into_the_new_one(old: Any, new: Any) -> None:
    patch = diff(old, new)
    assert jsonpatch.apply_patch(old, patch) == new
    assert {operation["op"] for operation in patch} <= {"add", "remove", "replace"}


@given(documents)
def test_nothing_changed_is_an_empty_patch(document: Any) -> None:
    assert diff(document, document) == []


def test_true_is_not_1_and_1_is_not_1_0() -> None:
    assert diff({"a": 1}, {"a": True}) == [{"op": "replace", "path": "/a", "value": True}]
    assert diff([1], [1.0]) == [{"op": "replace", "path": "/0", "value": 1.0}]


def test_a_grown_list_is_one_add_per_item_and_a_deep_change_one_replace() -> None:
    old = {"log": [1, 2], "rounds": [{"turns": [{"ended": None}]}]}
    new = {"log": [1, 2, 3], "rounds": [{"turns": [{"ended": 5}, {"ended": None}]}]}
    assert diff(old, new) == [
        {"op": "add", "path": "/log/2", "value": 3},
        {"op": "replace", "path": "/rounds/0/turns/0/ended", "value": 5},
        {"op": "add", "path": "/rounds/0/turns/1", "value": {"ended": None}},
    ]
    assert diff([1, 2, 3], [1]) == [{"op": "remove", "path": "/2"}, {"op": "remove", "path": "/1"}]
