// Macro expansion (%{TX.foo}, %{MATCHED_VAR}, %{REQUEST_HEADERS.host}, %{rule.id}): compiled
// once into literal and variable parts; a text without macros expands to itself for free.

export interface MacroPart {
  readonly collection: string;
  /** Lower-case key, or undefined for a plain variable (`MATCHED_VAR`). */
  readonly key: string | undefined;
}

export interface MacroSource {
  macroValue(collection: string, key: string | undefined): string;
}

export interface Macro {
  /** The text itself when it has no macro. */
  readonly constant: string | undefined;
  readonly parts: ReadonlyArray<string | MacroPart>;
}

const MACRO = /%\{([A-Za-z_][A-Za-z0-9_]*)(?:[.:]([^}]*))?\}/g;

export function compileMacro(text: string): Macro {
  if (text.indexOf('%{') < 0) return { constant: text, parts: [text] };
  const parts: Array<string | MacroPart> = [];
  let last = 0;
  for (const m of text.matchAll(MACRO)) {
    const at = m.index ?? 0;
    if (at > last) parts.push(text.slice(last, at));
    parts.push({ collection: (m[1] ?? '').toUpperCase(), key: m[2] === undefined ? undefined : m[2].toLowerCase() });
    last = at + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  if (parts.every((p) => typeof p === 'string')) return { constant: text, parts };
  return { constant: undefined, parts };
}

export function expandMacro(m: Macro, src: MacroSource): string {
  if (m.constant !== undefined) return m.constant;
  let out = '';
  for (const p of m.parts) out += typeof p === 'string' ? p : src.macroValue(p.collection, p.key);
  return out;
}
