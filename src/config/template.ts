// Header-value and redirect templates: "https://{host}{request_uri}", "{header.x-user}". Parsed
// at load (errors point at the config), rendered per request from the parts (src/filters/template.ts).

export type TemplatePart =
  | { kind: 'text'; text: string }
  | { kind: 'client_ip' | 'request_id' | 'host' | 'path' | 'request_uri' | 'query_string' | 'scheme' }
  | { kind: 'header' | 'cookie' | 'query'; name: string };

const SIMPLE = new Set(['client_ip', 'request_id', 'host', 'path', 'request_uri', 'query_string', 'scheme']);
export const PLACEHOLDER_NAMES = '{client_ip}, {request_id}, {host}, {path}, {request_uri}, {query_string}, {scheme}, {header.NAME}, {cookie.NAME}, {query.NAME}';

/** For the schema's descriptions of the texts that take placeholders (redirect, header rules). */
export const PLACEHOLDERS =
  'Placeholders: {client_ip}, {request_id}, {host}, {path}, {request_uri} (path and query), {query_string}, {scheme}, {header.NAME}, {cookie.NAME}, {query.NAME}; "{{" is a literal "{".';

export type ParsedTemplate = { ok: true; parts: TemplatePart[] } | { ok: false; message: string; hint?: string };

export function parseTemplate(text: string): ParsedTemplate {
  return parseBraces<TemplatePart>(
    text,
    (text) => ({ kind: 'text', text }),
    (name) => {
      const dot = name.indexOf('.');
      if (SIMPLE.has(name)) return { kind: name as 'host' };
      if (dot > 0 && dot < name.length - 1) {
        const scope = name.slice(0, dot);
        const field = name.slice(dot + 1);
        if (scope === 'header') return { kind: 'header', name: field.toLowerCase() };
        if (scope === 'cookie' || scope === 'query') return { kind: scope, name: field };
      }
      return undefined;
    },
    `placeholders: ${PLACEHOLDER_NAMES}`,
    'placeholder',
  );
}

/**
 * The "{name}" syntax shared by these templates and the access log's (src/observability/
 * access-format.ts): literal text, "{{" for a literal "{", and a part for each name `field`
 * knows (undefined: an error naming it, with `hint`).
 */
export function parseBraces<P>(
  text: string,
  literalPart: (text: string) => P,
  field: (name: string) => P | undefined,
  hint: string,
  what: string,
): { ok: true; parts: P[] } | { ok: false; message: string; hint: string } {
  const parts: P[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{', i);
    if (open < 0) {
      literal += text.slice(i);
      break;
    }
    literal += text.slice(i, open);
    if (text.charCodeAt(open + 1) === 123 /* { */) {
      literal += '{';
      i = open + 2;
      continue;
    }
    const close = text.indexOf('}', open);
    if (close < 0) return { ok: false, message: `unterminated "{" in ${JSON.stringify(text)}`, hint: 'write {{ for a literal "{"' };
    const name = text.slice(open + 1, close);
    const part = field(name);
    if (part === undefined) return { ok: false, message: `unknown ${what} {${name}} in ${JSON.stringify(text)}`, hint };
    if (literal !== '') parts.push(literalPart(literal));
    literal = '';
    parts.push(part);
    i = close + 1;
  }
  if (literal !== '') parts.push(literalPart(literal));
  return { ok: true, parts };
}
