"""The hall's devices in a browser: scripts a page gets before its own (Playwright's
``add_init_script``), shared by ``python -m bench show`` and tests/test_browser.py.

- ``STAMPS``: the page stamps each change of its countdown (text or state), the clicks
  on it, and a bare timer on the machine clock's second boundaries (the bench's
  baseline), on ``performance.timeOrigin + performance.now()``;
- ``SKEW``: the page's clock is off by a number of milliseconds;
- ``CLOCK_ESTIMATE``: evaluated on a page, its estimate of the server's clock.
"""

from __future__ import annotations

import json
from typing import Any

# The countdown is the element the selector names; window.__bench holds the stamps:
# marks [stamp, text, class], floor [stamp] and clicks [stamp].
STAMPS = """
(selector) => {
  const stamp = () => performance.timeOrigin + performance.now();
  window.__bench = { marks: [], floor: [], clicks: [] };
  const watch = () => {
    const element = document.querySelector(selector);
    if (!element) return;
    const mark = () => window.__bench.marks.push([stamp(), element.textContent, element.className]);
    new MutationObserver(mark).observe(element, { childList: true, characterData: true, subtree: true, attributes: true, attributeFilter: ["class"] });
  };
  document.addEventListener("DOMContentLoaded", watch);
  const floor = () => {
    const now = stamp();
    window.__bench.floor.push(now);
    setTimeout(floor, 1000 - (now % 1000) + 1);
  };
  setTimeout(floor, 1000 - (stamp() % 1000) + 1);
  document.addEventListener("click", (event) => window.__bench.clicks.push(performance.timeOrigin + event.timeStamp), true);
}
"""

# A device whose clock is off by SHIFT ms: Date.now() and new Date() (the page's idea of
# the time); performance.* stays true, so the stamps above are not shifted.
SKEW = """
(shift) => {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(realNow() + shift);
      else super(...args);
    }
    static now() {
      return realNow() + shift;
    }
  }
  window.Date = SkewedDate;
}
"""


# The page's clock estimate: [offset, best round trip]. From the client/clock.js the page
# runs, at its versioned address beside the page's script (importing /static/client/clock.js
# would start a second copy).
CLOCK_ESTIMATE = """async () => {
  const url = new URL("client/clock.js", document.querySelector("script[type=module]").src).href;
  const { clock } = await import(url);
  return [clock.offset, clock.bestRtt];
}"""


def init_script(function: str, argument: Any) -> str:
    return f"({function})({json.dumps(argument)});"


def seconds_of(text: str) -> int | None:
    """A countdown's text in seconds: "1:05" is 65, "+0:03" -3 (overtime), anything else None."""
    sign = -1 if text.startswith("+") else 1
    minutes, _, secs = text.lstrip("+").partition(":")
    return sign * (int(minutes) * 60 + int(secs)) if minutes.isdigit() and secs.isdigit() else None
