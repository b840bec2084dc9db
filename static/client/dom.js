/*
 * Future Battles: building the page. h() builds elements with textContent only:
 * person-entered text (names, visions, titles, challenges) never goes through innerHTML
 * (docs/security.md: nothing the audience sends can run as markup on a page).
 */

import { t } from "./i18n.js";

/**
 * Build an element. props: class, text (textContent), dataset, on<event> listeners,
 * DOM properties (disabled, checked, value...) and plain attributes. Children are
 * nodes or strings (strings become text nodes, never markup).
 */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "style") throw new Error("use element.style from code: the CSP forbids style attributes");
    else if (typeof value !== "string" && key in node) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** Replace a container's children, keeping the focus on the element with the same data-key. */
export function fill(container, ...children) {
  const active = document.activeElement;
  const key = active && active !== container && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren();
  append(container, children);
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

/** Show a fixed text (an msgid) that follows the language switch; null clears it. */
export function setText(node, msgid) {
  if (msgid) {
    node.dataset.i18n = msgid;
    node.textContent = t(msgid);
  } else {
    delete node.dataset.i18n;
    node.textContent = "";
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function show(node, visible) {
  if (node) node.hidden = !visible;
}

/** Say something to screen readers through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG document from the server (a chart, a QR code) as an <svg> element of this page:
 *  parsed as XML, never as HTML, and refused if it is anything but a plain drawing. */
export function drawing(text, what) {
  const svg = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
  const handler = [svg, ...svg.querySelectorAll("*")].some((el) => [...el.attributes].some((a) => a.name.startsWith("on")));
  if (svg.namespaceURI !== SVG_NS || svg.localName !== "svg" || handler || svg.querySelector("script, foreignObject, [href]")) {
    throw new Error(`${what}: not a drawing`);
  }
  return document.importNode(svg, true);
}
