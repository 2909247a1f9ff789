// Issues as compiler-style lines that editors and terminals turn into links:
//   usher.yaml:12:15: error: routes[2].upstream: no upstream named "ap" (did you mean "app"?)
import type { ConfigIssue } from './types.js';

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}:${issue.column ?? 1}`;
  const path = issue.path === '' ? '' : `${issue.path}: `;
  const hint = issue.hint ? ` (${issue.hint})` : '';
  return `${where}: ${issue.severity}: ${path}${issue.message}${hint}`;
}

/** One issue per line, in the order given (the loader returns them in source order). */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map(formatIssue).join('\n');
}
