"""Playwright helpers for tests/test_browser.py: Debian's Chromium, the venue's devices, and a
watch on everything the pages say in the console.

Every page a test opens goes through a ``Stage``: it records console errors, uncaught
exceptions, Content-Security-Policy violations and native dialogs (``alert`` from
injected markup would be one), and ``Stage.check()`` fails on any of them that the test
did not list beforehand, with a reason, through ``Stage.expect_console``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

# The venue's devices: a phone in the audience, the projector, the host's laptop.
DEVICES: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 1,
    },
    "projector": {"viewport": {"width": 1920, "height": 1080}, "device_scale_factor": 1},
    "laptop": {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1},
    "tablet": {"viewport": {"width": 820, "height": 1180}, "has_touch": True, "device_scale_factor": 1},
}

# A page cannot see a CSP violation in its console by itself in every case (a blocked
# style attribute is silent): report each one as a console error the Stage picks up.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"} in ${event.sourceFile}:${event.lineNumber}`);
});
"""


def chromium_path() -> str:
    """Debian's Chromium, never a downloaded one; a missing one fails the tests loudly."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `bash scripts/test` installs it (apt-get install chromium)")
    return str(CHROMIUM)


def launch(playwright: Any) -> Browser:
    browser: Browser = playwright.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)
    return browser


@dataclass(frozen=True)
class Expected:
    """A console error a test expects, and why it is not a fault."""

    pattern: re.Pattern[str]
    reason: str


@dataclass
class Said:
    page: str
    kind: str
    text: str

    def __str__(self) -> str:
        return f"[{self.page}] {self.kind}: {self.text}"


@dataclass
class Stage:
    """The browser contexts of one test and what their pages said."""

    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    said: list[Said] = field(default_factory=list)
    dialogs: list[Said] = field(default_factory=list)
    expected: list[Expected] = field(default_factory=list)

    def context(self, device: str, **options: Any) -> BrowserContext:
        context = self.browser.new_context(**{**DEVICES[device], **options})
        context.add_init_script(script=REPORT_CSP_VIOLATIONS)
        self.contexts.append(context)
        return context

    def page(self, device: str, url: str | None = None, name: str | None = None, **options: Any) -> Page:
        """A new page in its own context (its own storage: one device each)."""
        page = self.context(device, **options).new_page()
        self.watch(page, name or device)
        if url is not None:
            page.goto(url)
        return page

    def watch(self, page: Page, name: str) -> Page:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" or "Content Security Policy" in message.text:
                self.said.append(Said(name, f"console.{message.type}", message.text))

        def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(Said(name, f"dialog {dialog.type}", dialog.message))
            dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.said.append(Said(name, "pageerror", str(error))))
        page.on("dialog", on_dialog)
        return page

    def expect_console(self, pattern: str, reason: str) -> None:
        """Allow console errors matching pattern in this test; reason says why they are fine."""
        assert reason.strip(), "say why this error is expected"
        self.expected.append(Expected(re.compile(pattern), reason))

    def unexpected(self) -> list[Said]:
        return [s for s in self.said if not any(e.pattern.search(s.text) for e in self.expected)]

    def check(self) -> None:
        assert not self.dialogs, "a native dialog opened:\n" + "\n".join(map(str, self.dialogs))
        problems = self.unexpected()
        assert not problems, "unexpected console errors:\n" + "\n".join(map(str, problems))

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


def screenshot(page: Page, name: str, full_page: bool = False) -> Path:
    """A test artifact (git-ignored): test-artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # Finished, not frozen mid-way: the standings and the cards as the hall sees them.
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


# Texts of the catalogs still shown in the other language after a switch: every text node
# and labelling attribute under <body> (hidden ones too: they show later, or to a screen
# reader), exact or as a filled-in template such as "Round {n}". Person-entered text, the
# code and numbers match nothing; text in an element with its own lang attribute is meant
# to be in that language. Returns the leftovers.
LEFTOVER_TEXTS = r"""
async ([from, to]) => {
  const catalogs = await (await fetch(document.getElementById("catalogs").href)).json();
  const da = catalogs.da || {};
  // pairs: a text in `from` -> the same text in `to`, where the languages differ
  const pairs = new Map();
  for (const [en, dk] of Object.entries(da)) {
    if (!dk || dk === en) continue;
    if (from === "en") pairs.set(en, dk);
    else pairs.set(dk, en);
  }
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const compile = (text) => new RegExp("^" + text.split(/\{\w+\}/).map(escape).join("(.+)") + "$", "su");
  const templates = [];
  for (const [text, other] of pairs) {
    if (!/\{\w+\}/.test(text)) continue;
    const literal = text.replace(/\{\w+\}/g, "").replace(/[^\p{L}]/gu, "");
    if (literal.length < 4) continue; // "{n} s" would match too much
    templates.push([text, compile(text), compile(other)]);
  }
  // Text marked with its own language (the DA/EN buttons say "Dansk" and "English") is meant.
  const ownLanguage = (element) => element.closest("[lang]") !== document.documentElement;
  const leftovers = [];
  const look = (raw, where) => {
    const value = raw.replace(/\s+/g, " ").trim();
    if (!value) return;
    if (pairs.has(value)) {
      leftovers.push(`${where}: ${value}`);
      return;
    }
    for (const [text, pattern, otherPattern] of templates) {
      if (pattern.test(value) && !otherPattern.test(value)) {
        leftovers.push(`${where}: ${value} (${text})`);
        return;
      }
    }
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (parent.closest("script, style, noscript, template") || ownLanguage(parent)) continue;
    look(node.textContent, `${parent.tagName.toLowerCase()}#${parent.id}.${parent.className}`);
  }
  for (const element of document.body.querySelectorAll("[aria-label], [title], [placeholder], [alt]")) {
    for (const name of ["aria-label", "title", "placeholder", "alt"]) {
      if (element.hasAttribute(name) && !ownLanguage(element)) look(element.getAttribute(name), `${element.tagName.toLowerCase()}[${name}]`);
    }
  }
  return leftovers;
}
"""


def module_url(page: Page, name: str) -> str:
    """The address of one of the page's own modules, NAME being its path under static/ (the
    versioned one it runs, beside the page's script: importing /static/NAME instead would
    start a second copy of the module)."""
    url: str = page.evaluate("(name) => new URL(name, document.querySelector('script[type=module]').src).href", name)
    return url


def leftover_texts(page: Page, now: str) -> list[str]:
    """Catalog texts still in the language other than ``now`` ("da" or "en"), and in
    Danish the texts the page asked for that the Danish catalog lacks (client/i18n.js keeps
    them: a text missing from the catalog matches nothing above)."""
    other = "en" if now == "da" else "da"
    result: list[str] = page.evaluate(LEFTOVER_TEXTS, [other, now])
    if now == "da":
        i18n = module_url(page, "client/i18n.js")
        missing: list[str] = page.evaluate("async (url) => (await import(url)).untranslated()", i18n)
        result += [f"not in the Danish catalog: {text}" for text in missing]
    return result


# Form controls without a name a screen reader can say: no <label>, no aria-label(ledby).
UNLABELLED_CONTROLS = r"""
() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => el.type !== "hidden")
  .filter((el) => {
    const labelled = (el.labels && [...el.labels].some((l) => l.textContent.trim()))
      || (el.getAttribute("aria-label") || "").trim()
      || (el.getAttribute("aria-labelledby") || "").split(/\s+/).some((id) => document.getElementById(id)?.textContent.trim());
    const ownText = el.tagName === "BUTTON" && el.textContent.trim();
    return !(labelled || ownText);
  })
  .map((el) => el.outerHTML.slice(0, 160))
"""


def unlabelled_controls(page: Page) -> list[str]:
    result: list[str] = page.evaluate(UNLABELLED_CONTROLS)
    return result
