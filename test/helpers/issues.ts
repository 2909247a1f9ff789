import type { ConfigIssue } from '../../src/config/index.js';

/** A config issue as [line, column, path, message, hint?]: what the config tests compare. */
export type Brief = [line: number | undefined, column: number | undefined, path: string, message: string, hint?: string];

export const brief = (issues: readonly ConfigIssue[]): Brief[] =>
  issues.map((i) => {
    const b: Brief = [i.line, i.column, i.path, i.message];
    if (i.hint !== undefined) b.push(i.hint);
    return b;
  });
