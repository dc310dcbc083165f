// RFC 9162 inclusion check in the browser (SHA-256 via WebCrypto). The checkpoint's
// signature is checked by the offline verifier (`python -m ledger.verify`).
// A page opts in with a json_script element #verify-bundle ({checkpoint, entries,
// completeness}), an element #proof-check for the summary and #proof-<seq> cells, and
// #completeness-check for the subject-map proof that no entry was left out
// (docs/ledger-index.md); a statement page also has #claim (json_script) and #claim-check
// with data-commitment. No inline script needed.
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

  // ---- completeness: the subject map gridproof-subject-map/v1 (ledger/verify/subject_map.py)
  const ints = (v) => (Array.isArray(v) ? v : []).filter((x) => Number.isInteger(x));
  const ids = (kind, values) => ints(values).map((v) => kind + ":" + v);
  const moved = (m) => ids("bundle", [m.bundle_id, m.moved_bundle_id, m.rest_bundle_id]);
  const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  function derived(type, data) {
    if (["certificate.issued", "issuance_request.created", "issuance_request.approved"].includes(type)) {
      const iss = data.issuance;
      if (!isObj(iss)) return [];
      let keys = ids("issuance", [iss.issuance_id]);
      for (const period of iss.periods || []) {
        if (!Array.isArray(period) || period.length < 5 || !Array.isArray(period[4])) continue;
        for (const owner of period[4]) {
          if (Array.isArray(owner) && owner.length >= 2) {
            keys = keys.concat(ids("bundle", [owner[0]]), ids("account", [owner[1]]));
          }
        }
      }
      return keys;
    }
    if (type === "certificate.transferred") {
      return moved(data).concat(ids("account", [data.from_account_id, data.to_account_id]));
    }
    if (type === "certificate.batch_transferred") {
      let keys = ids("account", [data.to_account_id]);
      for (const item of data.transfers || []) {
        if (isObj(item)) keys = keys.concat(derived("certificate.transferred", item), ids("transfer", [item.transfer_id]));
      }
      return keys;
    }
    if (type === "certificate.retired") {
      let keys = ids("account", [data.account_id]);
      for (const item of data.items || []) if (isObj(item)) keys = keys.concat(moved(item));
      return keys;
    }
    if (type === "certificate.withdrawn") {
      return ids("bundle", data.withdrawn_bundle_ids).concat(
        ids("bundle", data.flagged_bundle_ids), ids("transfer", data.cancelled_transfer_ids));
    }
    if (type === "certificate.expired") return ids("bundle", data.bundle_ids);
    return [];
  }
  function subjectsOf(eventBytes) {
    let doc;
    try { doc = JSON.parse(new TextDecoder().decode(eventBytes)); } catch (e) { return []; }
    if (!isObj(doc) || typeof doc.type !== "string" || !Array.isArray(doc.subject)) return [];
    if (!doc.subject.every((s) => typeof s === "string")) return [];
    const keys = [...new Set(doc.subject)];
    if (isObj(doc.data)) for (const k of derived(doc.type, doc.data)) if (!keys.includes(k)) keys.push(k);
    return keys;
  }
  function record(r) {
    const count = new Uint8Array(8);
    new DataView(count.buffer).setBigUint64(0, BigInt(r.count));
    return cat(b64(r.key), count, b64(r.chain));
  }
  async function mapProven(root, subject, proof) {
    // (count, chain) proven for `subject`, null if proven absent; throws if it proves nothing.
    const key = await sha(new TextEncoder().encode(subject));
    const bucket = key[0] * 256 + key[1];
    if (proof.map !== "gridproof-subject-map/v1" || proof.bucket !== bucket) throw new Error("bucket");
    if (!Array.isArray(proof.siblings) || proof.siblings.length !== 16) throw new Error("siblings");
    let previous = null, found = null;
    for (const r of proof.records) {
      const k = b64(r.key);
      if (k[0] * 256 + k[1] !== bucket || !(r.count > 0)) throw new Error("record");
      const hex = Array.from(k, (x) => x.toString(16).padStart(2, "0")).join("");
      if (previous !== null && hex <= previous) throw new Error("order");
      previous = hex;
      if (same(k, key)) found = r;
    }
    let node = await sha(cat(new Uint8Array([2]), ...proof.records.map(record)));
    for (let level = 0; level < 16; level++) {
      const sib = b64(proof.siblings[level]);
      node = await sha((bucket >> level) & 1 ? cat(new Uint8Array([1]), sib, node) : cat(new Uint8Array([1]), node, sib));
    }
    if (!same(node, root)) throw new Error("root");
    return found;
  }
  async function complete(bundle, size, root) {
    // The number of entries proven to be the whole history, or throws.
    const c = bundle.completeness, idx = c.index_entry;
    const event = b64(idx.event_b64);
    if (idx.seq !== size - 1 || !(await verifyInclusion(event, idx.seq, size, idx.proof.map(b64), root))) throw new Error("index entry");
    const doc = JSON.parse(new TextDecoder().decode(event));
    if (doc.type !== "ledger.subject_index_committed" || doc.data.size !== idx.seq) throw new Error("index");
    const mapRoot = b64(doc.data.root);
    const entries = [];
    for (const e of bundle.entries) if (e.seq < idx.seq) entries.push({ seq: e.seq, bytes: b64(e.event_b64) });
    entries.sort((a, b) => a.seq - b.seq);
    for (const e of entries) e.about = subjectsOf(e.bytes);
    const keys = Object.keys(c.subjects);
    for (const e of entries) if (!e.about.some((k) => keys.includes(k))) throw new Error("slipped in");
    for (const key of keys) {
      const proven = await mapProven(mapRoot, key, c.subjects[key]);
      const mine = entries.filter((e) => e.about.includes(key));
      if (proven === null) { if (mine.length) throw new Error("absent"); continue; }
      let chain = new Uint8Array(32);
      for (const e of mine) chain = await sha(cat(chain, await sha(cat(new Uint8Array([0]), e.bytes))));
      if (mine.length !== proven.count || !same(chain, b64(proven.chain))) throw new Error("left out");
    }
    return entries.length;
  }
  async function checkCompleteness(bundle) {
    const out = document.getElementById("completeness-check");
    if (!out || !bundle.checkpoint || !bundle.completeness || !window.crypto || !crypto.subtle) return;
    const lines = bundle.checkpoint.split("\n");
    const size = parseInt(lines[1], 10), root = b64(lines[2]);
    let n = null;
    try { n = await complete(bundle, size, root); } catch (e) { n = null; }
    out.className = n === null ? "bad" : "ok";
    out.dataset.verified = n === null ? "no" : "yes";
    out.textContent = n === null
      ? say(out, "failed", "✗ The history could not be proven complete.")
      : "✓ " + say(out, "complete", "Complete history: {n} entries, proven at checkpoint size {size} (checked in your browser).")
        .replace("{n}", n).replace("{size}", size);
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
    if (source) {
      const bundle = JSON.parse(source.textContent);
      checkProofs(bundle);
      checkCompleteness(bundle);
    }
    checkClaim();
  }
  window.gridproofVerify = run;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
