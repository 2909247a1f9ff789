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
  const parts: TemplatePart[] = [];
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
    const dot = name.indexOf('.');
    let part: TemplatePart | undefined;
    if (SIMPLE.has(name)) part = { kind: name as 'host' };
    else if (dot > 0 && dot < name.length - 1) {
      const scope = name.slice(0, dot);
      const field = name.slice(dot + 1);
      if (scope === 'header') part = { kind: 'header', name: field.toLowerCase() };
      else if (scope === 'cookie' || scope === 'query') part = { kind: scope, name: field };
    }
    if (part === undefined) return { ok: false, message: `unknown placeholder {${name}} in ${JSON.stringify(text)}`, hint: `placeholders: ${PLACEHOLDER_NAMES}` };
    if (literal !== '') parts.push({ kind: 'text', text: literal });
    literal = '';
    parts.push(part);
    i = close + 1;
  }
  if (literal !== '') parts.push({ kind: 'text', text: literal });
  return { ok: true, parts };
}
