// `npm test`: bundles each test/*.test.ts with esbuild into a temporary folder (the page's
// build never sees them) and runs them with Node's own test runner.
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const entries = (await readdir(here)).filter((f) => f.endsWith(".test.ts")).sort();
if (entries.length === 0) throw new Error(`no *.test.ts in ${here}`);
const outdir = await mkdtemp(join(tmpdir(), "desktop-relay-web-tests-"));
try {
  await esbuild.build({
    entryPoints: entries.map((f) => join(here, f)),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outdir,
    outExtension: { ".js": ".mjs" },
    sourcemap: "inline",
    logLevel: "warning",
  });
  const files = entries.map((f) => join(outdir, f.replace(/\.ts$/, ".mjs")));
  const result = spawnSync(process.execPath, ["--enable-source-maps", "--test", "--test-reporter=spec", ...files], { stdio: "inherit" });
  process.exitCode = result.status ?? 1;
} finally {
  await rm(outdir, { recursive: true, force: true });
}
