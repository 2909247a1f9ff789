// Public API of the config module: load a config (text, file, object), report issues, and the
// JSON Schema for editors and docs. Everything else in src/config is internal.
export type * from './types.js';
export { defineConfig, loadConfigFile, loadConfigObject, loadConfigText } from './load.js';
export type { ConfigInput } from './schema.js';
export { formatIssue, formatIssues } from './format.js';
export { configJsonSchema } from './validate.js';
export { parseDuration, parseSize } from './units.js';
