// Vary (RFC 9111 §4.1): the request fields a stored response was selected by, normalised so
// that equivalent requests share a variant: repeated fields joined, whitespace around commas
// dropped, and Accept-Encoding reduced to the set of codings it accepts (q > 0), sorted, so
// "gzip, br", "br,gzip" and "br;q=0.9, gzip" share one variant.

export function normaliseField(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (name === 'accept-encoding') return normaliseAcceptEncoding(value);
  if (!value.includes(',')) return value.trim();
  return value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '')
    .join(',');
}

export function normaliseAcceptEncoding(value: string): string {
  const out: string[] = [];
  for (const element of value.split(',')) {
    const parts = element.split(';');
    let coding = parts[0]!.trim().toLowerCase();
    if (coding === '') continue;
    if (coding === 'x-gzip') coding = 'gzip';
    let q = 1;
    for (let i = 1; i < parts.length; i++) {
      const p = parts[i]!.trim();
      if (p.length >= 2 && (p[0] === 'q' || p[0] === 'Q') && p[1] === '=') q = Number(p.slice(2).trim());
    }
    if (!(q > 0) || out.includes(coding)) continue;
    out.push(coding);
  }
  return out.sort().join(',');
}
