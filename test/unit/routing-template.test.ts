import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTemplate } from '../../src/config/template.js';
import { Template } from '../../src/filters/template.js';
import { RouteRequest } from '../../src/router/index.js';

function template(text: string): Template {
  const t = parseTemplate(text);
  assert.ok(t.ok);
  return new Template(t.parts);
}

test('placeholders cannot put a CR, LF, NUL or other control character into a header value', () => {
  // Values node:http's parser would refuse today, as another source could feed them.
  const rr = new RouteRequest('h.test', '', '/p', 'q=a\r\nx', 'GET', ['X-A', 'v\r\nSet-Cookie: evil=1', 'Cookie', 'c=\u0000\u007f\tok'], '10.0.0.1', 'http');
  const ctx = { requestId: 'id\n1', clientAddress: '10.0.0.1' };
  assert.equal(template('{header.x-a}').render(ctx, rr), 'v%0D%0ASet-Cookie: evil=1');
  assert.equal(template('c={cookie.c};q={query.q};id={request_id}').render(ctx, rr), 'c=%00%7F\tok;q=a%0D%0Ax;id=id%0A1');
  assert.equal(template('https://x.test{path}?{query_string}').render(ctx, rr), 'https://x.test/p?q=a%0D%0Ax');
  assert.equal(template('plain {{text}').render(ctx, rr), 'plain {text}');
});
