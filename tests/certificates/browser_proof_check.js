// Runs the inline scripts of a rendered page under Node (>= 19, for WebCrypto) with a
// stub `document`, then prints each element the scripts wrote: "id<TAB>class<TAB>text".
const fs = require("fs");
const html = fs.readFileSync(process.argv[2], "utf8");
const data = {};
for (const m of html.matchAll(/<script id="([^"]+)" type="application\/json">([\s\S]*?)<\/script>/g)) {
  data[m[1]] = m[2];
}
const written = {};
globalThis.window = globalThis;
globalThis.atob = (s) => Buffer.from(s, "base64").toString("binary");
globalThis.document = {
  getElementById: (id) =>
    id in data ? { textContent: data[id] } : (written[id] = written[id] || { className: "", textContent: "" }),
};
const code = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join("\n");
(0, eval)(code);
setTimeout(() => {
  for (const [id, el] of Object.entries(written)) console.log(`${id}\t${el.className}\t${el.textContent}`);
}, 300);
