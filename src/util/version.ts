import { readFileSync } from 'node:fs';

/** usher's version, from its package.json (dist/src/util/version.js → the package root). */
export const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
