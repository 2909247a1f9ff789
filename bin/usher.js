#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/cli to dist/ by `npm run build` (run by `npm start`,
// `npm test` and `npm pack`; an installed package carries dist/).
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  // A fresh checkout before its first build: say what to do, not ERR_MODULE_NOT_FOUND.
  console.error(`usher: not built yet: run \`npm run build\` in ${new URL('..', import.meta.url).pathname}`);
  process.exit(70);
}
const { main: run } = await import(main.href);
run(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 70;
  },
);
