/*
 * Future Battles: this page in this browser. The battle code, language and title the
 * server wrote on <body>, the secret token of a link (the fragment), storage that a
 * browser may refuse, and random ids.
 */

const body = document.body;

export const page = Object.freeze({
  code: body.dataset.code || "",
  lang: body.dataset.lang === "da" ? "da" : "en",
  title: body.dataset.title || "",
  mark: body.dataset.mark || "", // the join page's mark for its socket (docs/protocol.md, Connecting)
});

// --- storage: a browser that refuses localStorage still plays -------------------------

export function stored(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function store(key, value) {
  try {
    if (value === null || value === undefined) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch {
    /* private mode: the value lives as long as the page */
  }
}

export function randomId(bytes = 16) {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The token of a secret link: the fragment, which no browser sends to a server. */
export function fragmentToken() {
  // A pasted link that only differs after the # does not reload the page: make it.
  window.addEventListener("hashchange", () => window.location.reload());
  try {
    return decodeURIComponent(window.location.hash.replace(/^#/, "")).trim();
  } catch {
    return "";
  }
}
