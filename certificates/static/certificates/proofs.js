// RFC 9162 inclusion check in the browser (SHA-256 via WebCrypto). The checkpoint's
// signature is checked by the offline verifier (`python -m ledger.verify`).
// A page opts in with a json_script element #verify-bundle ({checkpoint, entries}), an
// element #proof-check for the summary and #proof-<seq> cells; a statement page also has
// #claim (json_script) and #claim-check with data-commitment. No inline script needed.
"use strict";
(function () {
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const cat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  };
  const sha = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const say = (el, key, fallback) => (el && el.dataset[key]) || fallback;

  async function verifyInclusion(event, seq, size, proof, root) {
    if (seq >= size) return false;
    let fn = seq, sn = size - 1, r = await sha(cat(new Uint8Array([0]), event));
    for (const p of proof) {
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        r = await sha(cat(new Uint8Array([1]), p, r));
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await sha(cat(new Uint8Array([1]), r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 && same(r, root);
  }

  async function checkProofs(bundle) {
    const out = document.getElementById("proof-check");
    if (!out) return;
    if (!bundle.checkpoint) {
      out.textContent = say(out, "noCheckpoint", "No signed checkpoint yet: proofs follow with the next one.");
      return;
    }
    if (!window.crypto || !crypto.subtle) {
      out.textContent = say(out, "noCrypto", "This browser cannot hash here (not a secure context); use the offline verifier.");
      return;
    }
    const lines = bundle.checkpoint.split("\n");
    const size = parseInt(lines[1], 10), root = b64(lines[2]);
    let good = 0;
    for (const entry of bundle.entries) {
      const ok = await verifyInclusion(b64(entry.event_b64), entry.seq, size, (entry.proof || []).map(b64), root);
      const cell = document.getElementById("proof-" + entry.seq);
      if (cell) {
        cell.textContent = ok ? say(out, "included", "✓ included") : say(out, "failed", "✗ FAILED");
        cell.className = ok ? "ok" : "bad";
      }
      if (ok) good += 1;
    }
    const all = good === bundle.entries.length;
    out.className = all ? "ok" : "bad";
    const template = say(out, "summary", "{good} of {total} entries verified in your browser against the checkpoint root (tree size {size}).");
    out.textContent = (all ? "✓ " : "✗ ") + template
      .replace("{good}", good).replace("{total}", bundle.entries.length).replace("{size}", size);
    out.dataset.verified = all ? "yes" : "no";
  }

  async function checkClaim() {
    // RFC 8785 of a flat object of strings: keys sorted, values as JSON.stringify writes them.
    const source = document.getElementById("claim");
    const out = document.getElementById("claim-check");
    if (!source || !out || !window.crypto || !crypto.subtle) return;
    const claim = JSON.parse(source.textContent);
    const text = "{" + Object.keys(claim).sort()
      .map((k) => JSON.stringify(k) + ":" + JSON.stringify(claim[k])).join(",") + "}";
    const hex = Array.from(await sha(new TextEncoder().encode(text)),
      (b) => b.toString(16).padStart(2, "0")).join("");
    const ok = hex === out.dataset.commitment;
    out.className = ok ? "ok" : "bad";
    out.textContent = ok
      ? say(out, "ok", "✓ the claim below hashes to this commitment (checked in your browser)")
      : say(out, "bad", "✗ the claim does not match the commitment");
  }

  function run() {
    const source = document.getElementById("verify-bundle");
    if (source) checkProofs(JSON.parse(source.textContent));
    checkClaim();
  }
  window.gridproofVerify = run;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
