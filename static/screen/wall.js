/*
 * What every view on the wall keeps to: letters sized to the text, rows to the number of
 * battlers, the view fitted to the stage (docs/architecture.md, Clients), and the hall's
 * wish for less motion.
 */

export const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

/**
 * A size class for a text shown huge: a long name or vision gets smaller letters, so it
 * stays whole and readable from the back instead of running off the wall.
 */
export function sized(text, [long, longer, longest]) {
  const n = [...(text || "")].length;
  if (n > longest) return " is-longest";
  if (n > longer) return " is-longer";
  if (n > long) return " is-long";
  return "";
}

export const NAME_SIZES = [12, 20, 32];
export const VISION_SIZES = [48, 80, 110];
export const TITLE_SIZES = [40, 70, 100];
export const CHALLENGE_SIZES = [80, 160, 300];
export const PROPOSAL_SIZES = [60, 120, 240];

// The smallest zoom fitStage() goes down to: below it a 1024x768 projector's letters
// would be too small to read from the back of a hall, and a view that needs less was
// built with too much on it (the densities below keep ten battlers well above it).
const MIN_ZOOM = 0.4;

/**
 * Everything on the wall, whatever the names, visions and projector: what sized() and
 * density() could not foresee (a long scenario, ten long visions, a small projector) is
 * zoomed out until the stage holds it whole, never cut off or run under the footer. The
 * view's [data-fit] blocks are zoomed (the join code and the clock keep their size), or
 * the whole view when it has none; the zoom is found by halving the gap between one
 * that fits and one that does not.
 */
export function fitStage(stage) {
  const view = stage.firstElementChild;
  if (!view) return;
  const marked = [...stage.querySelectorAll("[data-fit]")];
  const blocks = marked.length ? marked : [view];
  const zoom = (value) => {
    for (const block of blocks) block.style.zoom = value === 1 ? "" : String(value);
  };
  // The view too: a view that fills the stage (the turn's grid) overflows into the stage's
  // padding before the stage's own scrollHeight shows it, and so under the footer.
  const overflows = (box) => box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1;
  const fits = () => !overflows(stage) && !overflows(view);
  // Measured as the view ends up, not as an entrance animation has it now (a card
  // scaled to 90 % fits where the whole card does not): screen.css, .is-measuring.
  stage.classList.add("is-measuring");
  zoom(1);
  if (!fits()) {
    let [low, high] = [MIN_ZOOM, 1];
    for (let step = 0; step < 7; step += 1) {
      const middle = (low + high) / 2;
      zoom(middle);
      if (fits()) low = middle;
      else high = middle;
    }
    zoom(low);
  }
  stage.classList.remove("is-measuring");
}

/** Fewer, bigger rows for a few battlers; smaller ones so 24 still fit on the wall. */
export function density(count) {
  if (count > 10) return "is-denser";
  if (count > 6) return "is-dense";
  return "";
}
