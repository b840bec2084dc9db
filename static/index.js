// The start page and the "no such battle" page: type a join code, go to /join/CODE.
import { $, setText } from "./client/dom.js";

const form = $("#join-form");
const input = $("#join-code");
const error = $("#join-error");

// Codes are read off a projector: accept spaces, dashes and lower case.
const normalise = (text) => text.toUpperCase().replace(/[^A-Z0-9]/g, "");

input.addEventListener("input", () => {
  setText(error, null);
  input.removeAttribute("aria-invalid");
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const code = normalise(input.value);
  if (code.length < 4 || code.length > 12) {
    setText(error, "Type the code: 4 to 12 letters and digits.");
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  window.location.assign(`/join/${encodeURIComponent(code)}`);
});
