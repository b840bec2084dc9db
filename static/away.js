// The page of a moment without the store (templates/away.html): the language switch, which
// importing the catalogs sets up; the page loads itself again by its own <meta refresh>.
import "./client/i18n.js";
