// Runs a rendered page's scripts under Node (>= 19, for WebCrypto) with a stub `document`:
// inline scripts and the project's own static scripts (`/static/<app>/<file>` is read
// from `<app>/static/<app>/<file>`), then prints each element the scripts wrote:
// "id<TAB>class<TAB>text". Elements keep their data-* attributes as `dataset`.
const fs = require("fs");
const path = require("path");
const repo = path.resolve(__dirname, "..", "..");
const html = fs.readFileSync(process.argv[2], "utf8");
const data = {};
for (const m of html.matchAll(/<script id="([^"]+)" type="application\/json">([\s\S]*?)<\/script>/g)) {
  data[m[1]] = m[2];
}
const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&lt;/g, "<")
  .replace(/&gt;/g, ">").replace(/&amp;/g, "&");
const datasets = {};
for (const m of html.matchAll(/<[a-z]+\b([^>]*\bid="([^"]+)"[^>]*)>/g)) {
  const dataset = {};
  for (const a of m[1].matchAll(/\bdata-([a-z-]+)="([^"]*)"/g)) dataset[camel(a[1])] = unescape(a[2]);
  datasets[m[2]] = dataset;
}
const written = {};
globalThis.window = globalThis;
globalThis.atob = (s) => Buffer.from(s, "base64").toString("binary");
globalThis.document = {
  readyState: "complete",
  addEventListener: () => {},
  getElementById: (id) => {
    if (id in data) return { textContent: data[id] };
    if (!(id in datasets)) return null; // not on the page
    return (written[id] = written[id] || { className: "", textContent: "", dataset: datasets[id] });
  },
};
const code = [];
for (const m of html.matchAll(/<script(?: src="([^"]+)"[^>]*)?>([\s\S]*?)<\/script>/g)) {
  if (m[1]) {
    const found = m[1].match(/\/static\/([^/]+)\/(.+)$/);
    if (found) code.push(fs.readFileSync(path.join(repo, found[1], "static", found[1], found[2]), "utf8"));
  } else if (m[2].trim()) {
    code.push(m[2]);
  }
}
(0, eval)(code.join("\n"));
setTimeout(() => {
  for (const [id, el] of Object.entries(written)) console.log(`${id}\t${el.className}\t${el.textContent}`);
}, 300);
