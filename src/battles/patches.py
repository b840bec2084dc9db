"""What changed between two versions of a JSON document, as a JSON Patch (RFC 6902).

An ``update`` carries the patch from the view its client holds to the next one, and an
announcement between processes the patch from one stored state to the next
(docs/architecture.md, "Changes, not states"). ``diff`` makes three of the standard's
operations only, ``add``, ``remove`` and ``replace``, each with a plain path (RFC 6901):

- two objects are compared member by member, so a change deep in a round is one small
  operation at its own path, never the round again;
- two arrays are compared item by item up to the shorter one's length, then the longer
  one's tail is added (an item each, in order) or removed (from the end), so that a log
  or a round's turns that grew by one is one ``add``;
- anything else that differs (a number, a text, ``null`` against an object) is replaced.

No ``move``, ``copy`` or ``test``: a patch never points elsewhere in the document, so a
client can apply it in a few lines (``static/client/patch.js``) as well as with any RFC
6902 library (the server and the tests use ``jsonpatch``), and a view can leave out a
part of the state by leaving out the operations under it (``views.public_patch``).
"""

from __future__ import annotations

from typing import Any

Operation = dict[str, Any]
Patch = list[Operation]


def diff(old: Any, new: Any) -> Patch:
    """The operations that turn ``old`` into ``new``, in the order they apply."""
    operations: Patch = []
    _diff(old, new, "", operations)
    return operations


def _diff(old: Any, new: Any, path: str, operations: Patch) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                operations.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
        for key, value in new.items():
            at = f"{path}/{_escape(key)}"
            if key in old:
                _diff(old[key], value, at, operations)
            else:
                operations.append({"op": "add", "path": at, "value": value})
    elif isinstance(old, list) and isinstance(new, list):
        common = min(len(old), len(new))
        for index in range(common):
            _diff(old[index], new[index], f"{path}/{index}", operations)
        for index in range(common, len(new)):
            operations.append({"op": "add", "path": f"{path}/{index}", "value": new[index]})
        for index in reversed(range(common, len(old))):
            operations.append({"op": "remove", "path": f"{path}/{index}"})
    elif type(old) is not type(new) or old != new:
        # type(): JSON tells true from 1 and 1 from 1.0, Python's == does not.
        operations.append({"op": "replace", "path": path, "value": new})


def _escape(key: str) -> str:
    """A member name as a JSON Pointer token (RFC 6901, section 3)."""
    return key.replace("~", "~0").replace("/", "~1")
