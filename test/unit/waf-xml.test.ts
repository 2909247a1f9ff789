// The XML request body processor (src/waf/xml.ts): XML:/* is the root's text content and
// XML://@* each attribute value, as ModSecurity v3 (libxml2) gives them; a body that is not
// well-formed sets REQBODY_ERROR with "XML parsing error: ...", and the bounds hold.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { processBody } from '../../src/waf/body.js';
import { Waf } from '../../src/waf/engine.js';
import { parseSecLang } from '../../src/waf/parse.js';
import { compileRules } from '../../src/waf/rules.js';
import { Transaction, processorFor } from '../../src/waf/transaction.js';
import { parseXml } from '../../src/waf/xml.js';

const LIMITS = { maxDepth: 16, maxNodes: 100 };

const values = (body: string, key: string): string[] => {
  const r = parseXml(body, LIMITS);
  assert.equal(r.error, undefined, `${body}: ${r.error}`);
  return r.xml.values.filter((_, i) => r.xml.names[i] === key);
};

test('XML:/* is the text content of the root: every descendant text and CDATA section, entities decoded', () => {
  assert.deepEqual(values('<?xml version="1.0"?>\n<a>x<b>y&lt;z</b><![CDATA[<script>]]>&#65;&#x42;<c/></a>\n', '/*'), ['xy<z<script>AB']);
  assert.deepEqual(values('<!-- c --><a><!-- not text -->t<?pi data?></a>', '/*'), ['t']);
  // bytes as sent: UTF-8, or another encoding the declaration names (not converted)
  assert.deepEqual(values('<a>\u00c3\u00a9</a>', '/*'), ['\u00c3\u00a9']);
  assert.deepEqual(values('<?xml version="1.0" encoding="ISO-8859-1"?><a>\u00e9</a>', '/*'), ['\u00e9']);
  assert.deepEqual(values('\u00ef\u00bb\u00bf<?xml version="1.0"?><a>zz</a>', '/*'), ['zz']);
  // a character reference above ASCII is its UTF-8 bytes, as libxml2 stores text
  assert.deepEqual(values('<a>&#233;</a>', '/*'), ['\u00c3\u00a9']);
  // an entity the internal subset declares is expanded, as libxml2 does (measured: ModSecurity's
  // XML:/* holds "zz"), nested ones too; an external one is never read and is empty
  assert.deepEqual(values('<!DOCTYPE a [<!ENTITY e "zz">]><a>1&e;2</a>', '/*'), ['1zz2']);
  assert.deepEqual(values(`<!DOCTYPE a [<!ENTITY x "&#65;&y;"><!ENTITY y 'b&amp;'>]><a k="&x;">&x;</a>`, '/*'), ['Ab&']);
  assert.deepEqual(values(`<!DOCTYPE a [<!ENTITY x "&#65;&y;"><!ENTITY y 'b&amp;'>]><a k="&x;">&x;</a>`, '//@*'), ['Ab&']);
  assert.deepEqual(values('<!DOCTYPE a [<!ENTITY ext SYSTEM "file:///etc/passwd">]><a>[&ext;]</a>', '/*'), ['[]']);
  // an undeclared entity is an error unless an external subset (never read) might declare it
  assert.deepEqual(values('<!DOCTYPE a SYSTEM "a.dtd"><a>[&u;]</a>', '/*'), ['[]']);
});

test('XML://@* is each attribute value, in document order, entities decoded and whitespace normalised', () => {
  assert.deepEqual(values(`<a x="1" y='&quot;2'><b z="a\tb&amp;c"/></a>`, '//@*'), ['1', '"2', 'a b&c']);
  assert.deepEqual(values('<a/>', '//@*'), []);
});

test('malformed XML sets an error ("XML parsing error: ...") and yields no values', () => {
  const bad = [
    ['', /empty/],
    ['just text', /before the root/],
    ['<a>', /<a> is not closed/],
    ['<a><b></a></b>', /does not match <b>/],
    ['<a></a><b></b>', /after the root/],
    ['<a></a>trailing', /after the root/],
    ['<a x="1" x="2"/>', /repeated/],
    ['<a x="<"/>', /'<' in the value/],
    ['<a x=1/>', /not quoted/],
    ['<a x="1"y="2"/>', /no space before/],
    ['<a>&nope;</a>', /not defined/],
    ['<a>&#0;</a>', /invalid character reference/],
    ['<a>x]]>y</a>', /']]>' in text/],
    ['<a><!-- open</a>', /unterminated comment/],
    ['<a><![CDATA[x</a>', /unterminated CDATA/],
    ['<a></a><?xml version="1.0"?>', /XML declaration not at the start/],
    ['<a><!-- a -- b --></a>', /'--' within a comment/],
    ['<!DOCTYPE a [<!ENTITY e "zz">]><a>&u;</a>', /the entity 'u' is not defined/],
    ['<!DOCTYPE a [<!ENTITY e "&e;">]><a>&e;</a>', /nests too deep/],
    ['<a>\u0001</a>', /a control character/],
    ['<a>&#1;</a>', /invalid character reference/],
    ['\n<?xml version="1.0"?><a/>', /XML declaration not at the start/],
    ['<a>\u00ff\u00fe</a>', /not proper UTF-8/],
    ['<?xml version="1.0" encoding="utf-8"?><a>\u00e9</a>', /not proper UTF-8/],
    ['<1a/>', /a name expected/],
    ['<a', /not closed/],
  ] as const;
  for (const [body, why] of bad) {
    const r = parseXml(body, LIMITS);
    assert.ok(r.error !== undefined, `${JSON.stringify(body)} parsed`);
    assert.match(r.error, /^XML parsing error: /);
    assert.match(r.error, why, JSON.stringify(body));
    assert.equal(r.xml.values.length, 0);
  }
});

test('entity expansion is bounded: the billion-laughs document is an error, not a gigabyte', () => {
  const decl = ['<!ENTITY l0 "lol">', ...Array.from({ length: 7 }, (_, k) => `<!ENTITY l${k + 1} "${`&l${k};`.repeat(10)}">`)].join('');
  const r = parseXml(`<!DOCTYPE a [${decl}]><a>&l7;</a>`, LIMITS);
  assert.match(r.error ?? '', /entity expansion beyond 10 times the document/);
});

test('the bounds: nesting deeper than maxDepth and more than maxNodes elements and attributes are errors', () => {
  assert.equal(parseXml(`${'<a>'.repeat(16)}${'</a>'.repeat(16)}`, LIMITS).error, undefined);
  assert.match(parseXml(`${'<a>'.repeat(17)}${'</a>'.repeat(17)}`, LIMITS).error ?? '', /nesting deeper than 16/);
  assert.equal(parseXml(`<r>${'<b/>'.repeat(99)}</r>`, LIMITS).error, undefined);
  assert.match(parseXml(`<r>${'<b/>'.repeat(100)}</r>`, LIMITS).error ?? '', /more than 100 elements/);
  // a deep unclosed document fails on the depth, not on a stack of its own
  assert.match(parseXml('<a>'.repeat(100_000), LIMITS).error ?? '', /nesting deeper/);
});

test('an XML Content-Type selects the XML processor (ModSecurity rule 200000) and the rules see XML:/*, XML://@* and REQBODY_ERROR', () => {
  assert.equal(processorFor('text/xml; charset=utf-8'), 'XML');
  assert.equal(processorFor('application/xml'), 'XML');
  assert.equal(processorFor('application/soap+xml'), 'XML');
  assert.equal(processorFor('application/xhtml+xml'), undefined);
  const rules = [
    'SecRuleEngine On',
    'SecDefaultAction "phase:2,log,pass"',
    'SecRule XML:/* "@contains <script>" "id:1,phase:2"',
    'SecRule XML://@* "@streq evil" "id:2,phase:2"',
    'SecRule REQBODY_ERROR "!@eq 0" "id:3,phase:2,logdata:%{reqbody_error_msg}"',
    'SecRule REQBODY_PROCESSOR "@streq XML" "id:4,phase:2"',
    'SecRule REQUEST_BODY "@contains CDATA" "id:5,phase:2"',
  ].join('\n');
  const rs = compileRules(parseSecLang(rules, 't.conf'));
  const run = (body: string): Transaction => {
    const tx = new Transaction(rs, { id: 'r', method: 'POST', target: '/', httpVersion: '1.1', headers: ['Host', 'x', 'Content-Type', 'text/xml'], remoteAddr: '192.0.2.1', remotePort: 1 });
    tx.runPhase(1);
    tx.setBody(body, processBody(tx.bodyProcessor, body, 'text/xml', { maxArgs: 100, maxDepth: 16 }));
    tx.runPhase(2);
    return tx;
  };
  // REQUEST_BODY stays the raw body after an XML parse: ModSecurity v3 sets it for every processor
  assert.deepEqual(run('<a k="evil"><![CDATA[<script>]]></a>').matched.map((m) => m.id), [1, 2, 4, 5]);
  const bad = run('<a><b></a>');
  assert.deepEqual(bad.matched.map((m) => m.id), [3, 4]);
  assert.match(bad.matched[0]?.data ?? '', /^XML parsing error: the end tag <\/a> does not match <b>/);
});

test('through processBody, XML nests at most 257 levels (measured: ModSecurity, libxml2 without XML_PARSE_HUGE, refuses 258) whatever the JSON depth', () => {
  const doc = (n: number) => `${'<a>'.repeat(n)}${'</a>'.repeat(n)}`;
  const limits = { maxArgs: 1000, maxDepth: 512 };
  assert.equal(processBody('XML', doc(257), 'text/xml', limits).error, undefined);
  assert.match(processBody('XML', doc(258), 'text/xml', limits).error ?? '', /nesting deeper than 257/);
  // a lower JSON depth does not lower the XML one
  assert.equal(processBody('XML', doc(257), 'text/xml', { ...limits, maxDepth: 16 }).error, undefined);
  // many elements are no error: the node bound is far above SecArgumentsLimit
  assert.equal(processBody('XML', `<r>${'<i a="1"/>'.repeat(5000)}</r>`, 'text/xml', limits).error, undefined);
});

test('the UTF-8 check reads the body bytes the caller hands over (no re-encoded copy of the body)', () => {
  const doc = (s: string): [string, Buffer] => [s, Buffer.from(s, 'latin1')];
  // the verdicts: UTF-8 passes, other bytes fail unless another encoding is declared
  for (const [body, bytes, ok] of [
    [...doc('<a>\u00c3\u00a9</a>'), true],
    [...doc('<a>\u00ff\u00fe</a>'), false],
    [...doc('<a>\u00c0\u00af</a>'), false], // an overlong '/'
    [...doc('<?xml version="1.0" encoding="ISO-8859-1"?><a>\u00e9</a>'), true],
  ] as const) {
    assert.equal(processBody('XML', body, 'text/xml', { maxArgs: 10, maxDepth: 16 }, bytes).error === undefined, ok, body);
  }
  // the bytes handed over are what is judged: the string is not encoded again
  assert.match(parseXml('<a>x</a>', LIMITS, Buffer.from('<a>\u00ff</a>', 'latin1')).error ?? '', /not proper UTF-8/);
});

test('with SecRequestBodyAccess Off (or ctl:requestBodyAccess=Off) no body processor runs: REQBODY_ERROR stays 0, no ARGS_POST (measured: ModSecurity passes an empty or broken text/xml body then)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'waf-xml-access-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'rules.conf'),
    [
      'SecRule REQUEST_HEADERS:X-Off "@streq 1" "id:1,phase:1,pass,nolog,ctl:requestBodyAccess=Off"',
      'SecRule ARGS_POST:q "@streq evil" "id:2,phase:2,deny"',
      'SecRule XML:/* "@streq evil" "id:3,phase:2,deny"',
      '',
    ].join('\n'),
  );
  const make = (extra: string[]): Waf => new Waf({ crs: join(dir, 'rules.conf'), paranoiaLevel: 1, inboundThreshold: 5, outboundThreshold: 4, mode: 'block', requestBodyLimit: 1024, extraRules: extra });
  const on = make([]);
  const off = make(['SecRequestBodyAccess Off']);
  const run = (waf: Waf, type: string, body: string | undefined, headers: string[] = []): number | undefined => {
    const tx = waf.transaction({ id: 'r', method: 'POST', target: '/', httpVersion: '1.1', headers: ['Host', 'x', 'Content-Type', type, ...headers], remoteAddr: '192.0.2.1', remotePort: 1 });
    tx.runPhase(1);
    if (body === undefined) waf.noBody(tx, type);
    else waf.addBody(tx, Buffer.from(body, 'latin1'), type);
    tx.runPhase(2);
    return tx.interruption?.ruleId;
  };
  // body access on: the XML processor refuses an empty or broken document (200002), reads the rest
  assert.equal(run(on, 'text/xml', undefined), 200002);
  assert.equal(run(on, 'text/xml', '<a>'), 200002);
  assert.equal(run(on, 'text/xml', '<a>evil</a>'), 3);
  assert.equal(run(on, 'application/x-www-form-urlencoded', 'q=evil'), 2);
  // off, from the rule set or for this transaction: nothing of the body is processed
  for (const [waf, headers] of [[off, []], [on, ['X-Off', '1']]] as const) {
    assert.equal(run(waf, 'text/xml', undefined, [...headers]), undefined);
    assert.equal(run(waf, 'text/xml', '<a>', [...headers]), undefined);
    assert.equal(run(waf, 'text/xml', '<a>evil</a>', [...headers]), undefined);
    assert.equal(run(waf, 'application/x-www-form-urlencoded', 'q=evil', [...headers]), undefined);
  }
});

test('the DOCTYPE scan is not confused by comments, processing instructions and CDATA (measured: ModSecurity v3 / libxml2 agree on each)', () => {
  // in the internal subset: a ']>' or a quote inside a comment or PI ends nothing, an <!ENTITY in
  // one declares nothing (XML:/* is "x" in ModSecurity for each)
  for (const doc of [
    '<!DOCTYPE a [<!-- ]> --><!ENTITY e "x">]><a>&e;</a>',
    '<!DOCTYPE a [<!-- <!ENTITY e "y"> --><!ENTITY e "x">]><a>&e;</a>',
    `<!DOCTYPE a [<!-- don't --><!ENTITY e "x">]><a>&e;</a>`,
    '<!DOCTYPE a [<?pi ]> ?><!ENTITY e "x">]><a>&e;</a>',
    '<!DOCTYPE a [<?pi <!ENTITY e "y"> ?><!ENTITY e "x">]><a>&e;</a>',
    '<!-- c --><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
  ]) {
    assert.deepEqual(values(doc, '/*'), ['x'], doc);
  }
  // a DOCTYPE inside a comment (before the root) or a PI declares nothing: the entity is undefined
  // (ModSecurity: 400, "XML: Failed parsing document.")
  for (const doc of ['<!-- <!DOCTYPE a [<!ENTITY e "x">]> --><a>&e;</a>', `<?pi <!DOCTYPE a [<!ENTITY e 'x'>]> ?><a>&e;</a>`]) {
    assert.match(parseXml(doc, LIMITS).error ?? '', /the entity 'e' is not defined/, doc);
  }
  // inside the root, in a comment or CDATA section, it is no DOCTYPE at all (ModSecurity: no parse error)
  assert.deepEqual(values('<a><!-- <!DOCTYPE b> --><![CDATA[<!DOCTYPE c>]]>t</a>', '/*'), ['<!DOCTYPE c>t']);
  // an unterminated comment in the subset is an error, as elsewhere
  assert.match(parseXml('<!DOCTYPE a [<!-- ]><a/>', LIMITS).error ?? '', /unterminated comment/);
});
