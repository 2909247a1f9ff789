// Compares usher's @detectSQLi/@detectXSS (src/waf/detect) with ModSecurity's, input by input
// over the corpus (test/fixtures/waf-detect): shared by bench/waf/detect-compare.js (the report)
// and test/integration/waf-detect-modsecurity.test.ts (the thresholds).
import { detectSqli, detectXss } from '../../src/waf/detect/index.js';
import { corpus, type CorpusEntry, type Kind } from '../fixtures/waf-detect/corpus.js';
import { startModSecurity, type Verdict } from './modsecurity.js';

export interface Row {
  input: string;
  kind: Kind;
  modsecurity: Verdict;
  usher: { sqli: boolean; xss: boolean; fingerprint?: string };
}

export interface Rates {
  /** Attacks of the detector's kind it flagged. */
  detected: number;
  attacks: number;
  /** Benign inputs it flagged. */
  falsePositives: number;
  benign: number;
}

export interface Comparison {
  rows: Row[];
  /** Inputs where both verdicts (SQLi and XSS) agree. */
  agree: number;
  sqli: { agree: number; usher: Rates; modsecurity: Rates };
  xss: { agree: number; usher: Rates; modsecurity: Rates };
}

function rates(rows: readonly Row[], kind: 'sqli' | 'xss', who: 'usher' | 'modsecurity'): Rates {
  const r: Rates = { detected: 0, attacks: 0, falsePositives: 0, benign: 0 };
  for (const row of rows) {
    const flagged = row[who][kind];
    if (row.kind === kind) {
      r.attacks++;
      if (flagged) r.detected++;
    } else if (row.kind === 'benign') {
      r.benign++;
      if (flagged) r.falsePositives++;
    }
  }
  return r;
}

/** Runs the corpus through both: starts nginx+ModSecurity, asks it, stops it. */
export async function compareWithModSecurity(entries: readonly CorpusEntry[] = corpus()): Promise<Comparison> {
  const oracle = await startModSecurity();
  let verdicts: Verdict[];
  try {
    verdicts = await oracle.verdicts(entries.map((e) => e.input));
  } finally {
    await oracle.close();
  }
  const rows: Row[] = entries.map((e, i) => {
    const fingerprint = detectSqli(e.input);
    const usher = { sqli: fingerprint !== undefined, xss: detectXss(e.input), ...(fingerprint !== undefined ? { fingerprint } : {}) };
    return { input: e.input, kind: e.kind, modsecurity: verdicts[i]!, usher };
  });
  let agree = 0;
  let sqliAgree = 0;
  let xssAgree = 0;
  for (const r of rows) {
    const s = r.usher.sqli === r.modsecurity.sqli;
    const x = r.usher.xss === r.modsecurity.xss;
    if (s) sqliAgree++;
    if (x) xssAgree++;
    if (s && x) agree++;
  }
  return {
    rows,
    agree,
    sqli: { agree: sqliAgree, usher: rates(rows, 'sqli', 'usher'), modsecurity: rates(rows, 'sqli', 'modsecurity') },
    xss: { agree: xssAgree, usher: rates(rows, 'xss', 'usher'), modsecurity: rates(rows, 'xss', 'modsecurity') },
  };
}
