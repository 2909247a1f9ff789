// Collecting config issues with positions. A Locator maps a path in the data ("routes", 2,
// "upstream") to a line and column in the source; YAML/JSON files have one (positions.ts),
// JS configs and in-memory objects do not, and their issues carry the file name only.
// ConfigIssue and SourceLocation are defined here rather than in types.ts so that a feature's
// config section beside the feature (src/filters/<name>/config.ts, src/upstream/config/) can use
// them without a type cycle through types.ts, which imports the sections' types.
export type Segment = string | number;

/** Where a config node came from, for error messages and `usher explain`. */
export interface SourceLocation {
  file: string;
  line: number; // 1-based
  column: number; // 1-based
}

/** One problem found in a config. */
export interface ConfigIssue {
  severity: 'error' | 'warning';
  file: string;
  line?: number; // 1-based, when known
  column?: number; // 1-based, when known
  /** JSON-path-like: "routes[2].upstream", "upstreams.app.servers[0].url", "" for the root. */
  path: string;
  /** What was wrong and what was expected, e.g. "expected a duration like 5s or 250ms, got \"5 parsecs\"". */
  message: string;
  /** e.g. "did you mean \"upstream\"?" */
  hint?: string;
}

export interface Position {
  line: number; // 1-based
  column: number; // 1-based
}

/**
 * "key": the position of the key itself (unknown keys, upstream names); "value": the node at
 * the path, or its nearest ancestor that exists (a missing key points at its parent mapping).
 */
export type Locator = (path: readonly Segment[], at: 'key' | 'value') => Position | undefined;

export const noLocator: Locator = () => undefined;

/** ["routes", 2, "upstream"] → "routes[2].upstream"; keys that are not identifiers are quoted. */
export function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export interface IssueOptions {
  hint?: string | undefined;
  at?: 'key' | 'value';
  /** An exact position, when the caller knows better than the locator (e.g. inside a scalar). */
  position?: Position | undefined;
}

export class Issues {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];
  private readonly muted = new Set<string>();

  constructor(
    readonly file: string,
    readonly locate: Locator = noLocator,
  ) {}

  error(path: readonly Segment[], message: string, options: IssueOptions = {}): void {
    this.add('error', path, message, options);
  }

  warning(path: readonly Segment[], message: string, options: IssueOptions = {}): void {
    this.add('warning', path, message, options);
  }

  /** Whether an error was already reported for exactly this path (to avoid saying it twice). */
  hasErrorAt(path: readonly Segment[]): boolean {
    const p = formatPath(path);
    return this.errors.some((e) => e.path === p);
  }

  /** Drops later errors at exactly this path: its first error (e.g. an unset variable) explains them. */
  mute(path: readonly Segment[]): void {
    this.muted.add(formatPath(path));
  }

  private add(severity: ConfigIssue['severity'], path: readonly Segment[], message: string, options: IssueOptions): void {
    const pos = options.position ?? this.locate(path, options.at ?? 'value');
    const issue: ConfigIssue = { severity, file: this.file, path: formatPath(path), message };
    if (pos) {
      issue.line = pos.line;
      issue.column = pos.column;
    }
    if (options.hint) issue.hint = options.hint;
    if (severity === 'error' && this.muted.has(issue.path)) return;
    const list = severity === 'error' ? this.errors : this.warnings;
    if (!list.some((i) => i.path === issue.path && i.message === issue.message)) list.push(issue);
  }
}

/** Issues in source order (line, then column); issues without a position keep their order, last. */
export function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => {
      const la = a.issue.line ?? Infinity;
      const lb = b.issue.line ?? Infinity;
      if (la !== lb) return la - lb;
      const ca = a.issue.column ?? Infinity;
      const cb = b.issue.column ?? Infinity;
      if (ca !== cb) return ca - cb;
      return a.i - b.i;
    })
    .map((x) => x.issue);
}
