// Builds the join page and the client into desktop_relay/web/dist, which the Python package
// serves (`/` and `/static/`) and ships, so that running the relay needs no Node.js.
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, "..", "..", "desktop_relay", "web", "dist");
const watch = process.argv.includes("--watch");

const common = {
  bundle: true,
  minify: !watch,
  sourcemap: "linked",
  // Phones keep old browsers. Safari 14.1 was the first with MediaRecorder, but esbuild cannot
  // lower socket.io's destructuring for Safari 14, so 15 is the floor.
  target: ["es2019", "safari15", "chrome87", "firefox78"],
  platform: "browser",
  legalComments: "linked",
  metafile: true,
  logLevel: watch ? "info" : "warning",
};

const builds = [
  // The page, with the client and socket.io inside.
  { ...common, entryPoints: { page: join(here, "src/page/main.ts") }, format: "iife", outdir },
  { ...common, entryPoints: { page: join(here, "src/page/style.css") }, outdir },
  // The client alone, for other pages: a script defining `BrowserToRtmpClient` like the
  // original's bundle, and an ES module.
  {
    ...common,
    entryPoints: { "browser-to-rtmp-client": join(here, "src/client/global.ts") },
    format: "iife",
    outdir,
  },
  {
    ...common,
    entryPoints: { "browser-to-rtmp-client": join(here, "src/client/index.ts") },
    format: "esm",
    outExtension: { ".js": ".mjs" },
    outdir,
  },
  // The AudioWorklet that WebCodecs capture reads audio through where the page has no
  // MediaStreamTrackProcessor: a module of its own, loaded from the relay (the page's CSP
  // allows no blob: script).
  {
    ...common,
    entryPoints: { "capture-audio-worklet": join(here, "src/client/capture-audio-worklet.ts") },
    format: "esm",
    outdir,
  },
];

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
for (const file of ["index.html", "icon.svg"]) await copyFile(join(here, "src/page", file), join(outdir, file));

/**
 * The licences of the npm packages inside the bundles (MIT asks to ship their notices), taken
 * from esbuild's metafile: exactly what was bundled, not every production dependency (socket.io's
 * Node-only `ws` never reaches the page). THIRD_PARTY_LICENSES.txt is served with the page;
 * THIRD_PARTY_LICENSES.json is the same for packaging/notices.py, which ships it in the app.
 */
async function writeThirdPartyLicenses(results) {
  const packages = new Set();
  for (const result of results) {
    for (const input of Object.keys(result.metafile.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
      if (match) packages.add(match[1]);
    }
  }
  const entries = [];
  for (const name of [...packages].sort()) {
    const dir = join(here, "node_modules", name);
    const { version, license, homepage } = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
    const files = (await readdir(dir)).filter((f) => /^(licen[cs]e|copying|notice)/i.test(f)).sort();
    const texts = [];
    for (const file of files) texts.push({ file, text: (await readFile(join(dir, file), "utf8")).trim() });
    entries.push({ name, version, license: license ?? null, homepage: homepage ?? null, texts });
  }
  const sections = entries.map(({ name, version, license, texts }) => {
    const body = texts.length ? texts.map((t) => t.text).join("\n\n") : `License: ${license}`;
    return `${name} ${version}\n\n${body}\n`;
  });
  await writeFile(join(outdir, "THIRD_PARTY_LICENSES.txt"), sections.join("\n" + "-".repeat(72) + "\n\n"));
  await writeFile(join(outdir, "THIRD_PARTY_LICENSES.json"), JSON.stringify(entries, null, 2) + "\n");
}

if (watch) {
  for (const options of builds) await (await esbuild.context(options)).watch();
} else {
  await writeThirdPartyLicenses(await Promise.all(builds.map((options) => esbuild.build(options))));
  console.log(`Built the page and the client into ${outdir}`);
}
