// The folded SQL tokens of one tokenisation (sqli.ts) and the evidence gathered while folding.

/** Folded tokens kept per context: the fingerprint uses 5, the rules look at up to 8. */
export const MAX_TOKENS = 8;

/** The info of a comment token: "--" followed by something other than a space. */
export const C_TIGHT = 1;

/** Evidence bits gathered while folding (for ambiguous short fingerprints, decide.ts). */
export const enum EV {
  FOLD = 1, // a comparison `value op value` was folded into one value
  SYMBOL = 2, // a symbolic logic operator (&&, ||)
  COMMENT = 4, // a comment was dropped or ends the input
  UNARY = 8, // a unary sign was absorbed
  HASH = 16, // the trailing comment is a "#" comment (MySQL only)
  /** What makes a short `value AND value` an injection rather than words. */
  STRONG = FOLD | SYMBOL | COMMENT | UNARY,
}

/** The state of one tokenisation: folded tokens and evidence. Reused between calls. */
export class SqlTokens {
  readonly type = new Uint8Array(MAX_TOKENS);
  readonly info = new Uint16Array(MAX_TOKENS); // word flags of the token (sql-words.ts)
  readonly start = new Int32Array(MAX_TOKENS);
  readonly end = new Int32Array(MAX_TOKENS);
  count = 0;
  evidence = 0;
  /** The input of the last tokenize() (a reference, for wordIs() and startsWith()). */
  input = '';

  reset(): void {
    this.count = 0;
    this.evidence = 0;
  }

  /** True when token i's text is `lower` (a lower-case word), compared without case. */
  wordIs(i: number, lower: string): boolean {
    return this.end[i]! - this.start[i]! === lower.length && this.startsWith(i, lower);
  }

  /** True when token i's text starts with `lower` (a lower-case word), compared without case. */
  startsWith(i: number, lower: string): boolean {
    const start = this.start[i]!;
    if (this.end[i]! - start < lower.length) return false;
    for (let j = 0; j < lower.length; j++) {
      let c = this.input.charCodeAt(start + j);
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      if (c !== lower.charCodeAt(j)) return false;
    }
    return true;
  }

  /** The type letters of the first five tokens. */
  fingerprint(): string {
    let out = '';
    const n = this.count < 5 ? this.count : 5;
    for (let i = 0; i < n; i++) out += String.fromCharCode(this.type[i]!);
    return out;
  }
}

