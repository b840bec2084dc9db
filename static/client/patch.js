/*
 * Future Battles: an update's patch applied to the battle a page holds. The server sends
 * JSON Patch (RFC 6902) with three operations only, add, remove and replace
 * (docs/protocol.md, "update"). The battle given is left as it was: the objects on each
 * operation's path are copied, the rest is shared, so a page may keep the battle it
 * rendered last and compare.
 */

/** A JSON Pointer's tokens (RFC 6901): "/rounds/0/turns" -> ["rounds", "0", "turns"]. */
function tokens(path) {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new Error(`bad path ${path}`);
  return path
    .slice(1)
    .split("/")
    .map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"));
}

function copied(container) {
  return Array.isArray(container) ? container.slice() : { ...container };
}

function index(array, token, adding) {
  const at = token === "-" && adding ? array.length : Number(token);
  if (!/^(0|[1-9][0-9]*)$/.test(token) && !(token === "-" && adding)) throw new Error(`bad index ${token}`);
  if (at > array.length || (!adding && at >= array.length)) throw new Error(`index ${token} out of range`);
  return at;
}

function applyOperation(document, operation) {
  const path = tokens(operation.path);
  if (path.length === 0) {
    if (operation.op !== "add" && operation.op !== "replace") throw new Error(`cannot ${operation.op} the whole document`);
    return operation.value;
  }
  const root = copied(document);
  let parent = root;
  for (const token of path.slice(0, -1)) {
    const key = Array.isArray(parent) ? index(parent, token, false) : token;
    // Own members only: a "__proto__" on the path must not reach an object's prototype.
    const own = Object.prototype.hasOwnProperty.call(parent, key);
    if (!own || parent[key] === null || typeof parent[key] !== "object") throw new Error(`no ${operation.path}`);
    parent[key] = copied(parent[key]);
    parent = parent[key];
  }
  const last = path[path.length - 1];
  if (Array.isArray(parent)) {
    const at = index(parent, last, operation.op === "add");
    if (operation.op === "add") parent.splice(at, 0, operation.value);
    else if (operation.op === "remove") parent.splice(at, 1);
    else if (operation.op === "replace") parent[at] = operation.value;
    else throw new Error(`unknown op ${operation.op}`);
  } else {
    if (last === "__proto__") throw new Error(`no ${operation.path}`); // a member, never the prototype
    const present = Object.prototype.hasOwnProperty.call(parent, last);
    if (operation.op !== "add" && !present) throw new Error(`no ${operation.path}`);
    if (operation.op === "add" || operation.op === "replace") parent[last] = operation.value;
    else if (operation.op === "remove") delete parent[last];
    else throw new Error(`unknown op ${operation.op}`);
  }
  return root;
}

/** The document after the patch; throws (and the caller resyncs) when it does not apply. */
export function applyPatch(document, patch) {
  return patch.reduce(applyOperation, document);
}
