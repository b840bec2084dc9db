/*
 * Future Battles: a ballot's receipt and a vote's digest (docs/rules.md, votes; what they
 * prove: docs/security.md, "Receipts and digests"). The check asks the server whether a
 * receipt is in a closed vote's count (docs/protocol.md, "Checking a receipt"); the phone
 * and the results page both use it.
 */
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { page } from "./page.js";

/** A vote's digest as every page shows it: a label and the figure, the same on each. */
export function digestLine(digest, className = "vote-digest") {
  if (!digest) return null;
  return h("p", { class: className }, `${t("Digest")} `, h("code", { class: "digest" }, digest));
}

/**
 * Check `receipt` in vote `voteId`: the answer as a sentence, and whether it is in the
 * count. `nameOf(id)`: a battler's name.
 */
export async function checkReceipt(voteId, receipt, nameOf) {
  const path = `/api/battles/${encodeURIComponent(page.code)}/votes/${encodeURIComponent(voteId)}/receipts/${encodeURIComponent(receipt.trim() || "-")}`;
  let response;
  let answer = {};
  try {
    response = await fetch(path, { headers: { accept: "application/json" } });
    answer = await response.json().catch(() => ({}));
  } catch {
    return { counted: false, text: t("The receipt could not be checked just now. Try again.") };
  }
  if (response.ok) {
    const text = t("In the count: receipt {receipt} is a vote for {name}.", { receipt: answer.receipt, name: nameOf(answer.choice) });
    return { counted: true, text, digest: answer.digest };
  }
  if (answer.error === "vote_open") return { counted: false, text: t("The vote is still open: check the receipt once it has closed.") };
  if (answer.error === "vote_voided") return { counted: false, text: t("That vote was voided: none of its ballots counts.") };
  if (answer.error === "not_counted") return { counted: false, text: t("This receipt is not in the count. Show it to the host.") };
  if (response.status === 429) return { counted: false, text: t("Too many checks from this network: wait a minute and try again.") };
  return { counted: false, text: t("The receipt could not be checked just now. Try again.") };
}
