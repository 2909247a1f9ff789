// The installed OWASP CRS (Debian's modsecurity-crs 3.3.4) loads at every paranoia level with
// exactly the skip list docs/waf.md gives; every directive, variable, operator, transformation,
// action and ctl: option it uses is in docs/waf.md; and the `waf:` config section's checks.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatIssues, loadConfigObject, loadConfigText } from '../../src/config/index.js';
import { Waf } from '../../src/waf/engine.js';
import { inventory } from '../../src/waf/inventory.js';
import { loadRuleFiles } from '../../src/waf/load.js';

const CRS = '/usr/share/modsecurity-crs';
const DOC = readFileSync(fileURLToPath(new URL('../../../docs/waf.md', import.meta.url)), 'utf8');

function documentedSkips(): string[] {
  const m = /<!-- waf-skipped:start -->\n([\s\S]*?)<!-- waf-skipped:end -->/.exec(DOC);
  assert.ok(m !== null, 'docs/waf.md has the skipped-rules block');
  return (m[1] ?? '').trim().split('\n').map((l) => l.replace(/^- /, ''));
}

const options = (pl: 1 | 2 | 3 | 4) => ({ crs: CRS, paranoiaLevel: pl, inboundThreshold: 5, outboundThreshold: 4, mode: 'block' as const, requestBodyLimit: 1 << 20 });
const browser = (target: string) => ({
  id: 'r1',
  method: 'GET',
  target,
  httpVersion: '1.1',
  headers: ['Host', 'shop.example', 'User-Agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0', 'Accept', 'text/html,application/xhtml+xml', 'Accept-Language', 'en-GB,en', 'Accept-Encoding', 'gzip, deflate'],
  remoteAddr: '198.51.100.7',
  remotePort: 50000,
});

for (const pl of [1, 2, 3, 4] as const) {
  test(`the CRS loads at paranoia level ${pl}, skipping exactly what docs/waf.md lists; a plain GET passes, a traversal is blocked`, () => {
    const waf = new Waf(options(pl));
    assert.deepEqual(waf.rules.skipped.map((s) => `${s.id}: ${s.reason}`), documentedSkips());
    assert.ok(waf.rules.rules.size > 600, `${waf.rules.rules.size} rules`);
    assert.deepEqual(waf.rules.settings.componentSignatures, ['OWASP_CRS/3.3.4']);
    const ok = waf.transaction(browser('/catalog/item.html?id=42&color=blue'));
    ok.runPhase(1);
    ok.runPhase(2);
    assert.equal(ok.interruption, undefined, JSON.stringify(ok.matched.map((m) => m.id)));
    const bad = waf.transaction(browser('/download?file=../../../../etc/passwd'));
    bad.runPhase(1);
    bad.runPhase(2);
    assert.equal(bad.interruption?.ruleId, 949110);
    assert.ok(bad.matched.some((m) => m.id === 930100 || m.id === 930110));
  });
}

test('every name the installed CRS uses is documented in docs/waf.md', () => {
  const inv = inventory(loadRuleFiles(`${CRS}/rules/*.conf`));
  const missing: string[] = [];
  for (const [kind, map] of Object.entries(inv)) {
    for (const name of map.keys()) {
      const spelled = kind === 'operators' ? `@${name}` : name;
      if (!DOC.toLowerCase().includes(`\`${spelled.toLowerCase()}`)) missing.push(`${kind}: ${spelled}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('the waf: section: defaults, per-route off and exclusions; a route section needs the top-level one; a missing CRS is named', () => {
  const ok = loadConfigObject(
    {
      listeners: [{ address: '127.0.0.1:0' }],
      upstreams: { app: { servers: ['http://127.0.0.1:1'] } },
      waf: { crs: CRS, exclude_rules: [920350, '921000-921999'] },
      routes: [{ match: { path: '/open/' }, upstream: 'app', waf: false }, { upstream: 'app', waf: { mode: 'detection_only', exclude_targets: [{ rules: [942100], targets: ['ARGS:pw'] }] } }],
    },
    '<test>',
  );
  assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.errors));
  const c = ok.config;
  assert.equal(c.waf?.paranoia_level, 1);
  assert.equal(c.waf?.time_budget, 1000);
  assert.equal(c.waf?.request_body_limit, 1024 * 1024);
  assert.equal(c.routes[0]?.waf, undefined, 'waf: false');
  assert.deepEqual(c.routes[1]?.waf, {
    mode: 'detection_only',
    exclude: { rules: [[920350, 920350], [921000, 921999]], tags: [], targets: [{ rules: [[942100, 942100]], tags: [], targets: ['ARGS:pw'] }] },
  });
  const noTop = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], upstreams: { app: { servers: ['http://127.0.0.1:1'] } }, routes: [{ upstream: 'app', waf: { exclude_rules: [1] } }] }, '<test>');
  assert.ok(!noTop.ok);
  assert.match(JSON.stringify(noTop.errors), /needs the top-level `waf:` section/);
  const badPath = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], waf: { crs: '/no/such/crs' } }, '<test>');
  assert.ok(!badPath.ok);
  assert.match(JSON.stringify(badPath.errors), /no such file or directory: \/no\/such\/crs/);
  const badRange = loadConfigObject({ listeners: [{ address: '127.0.0.1:0' }], waf: { crs: CRS, exclude_rules: ['9-3'] } }, '<test>');
  assert.ok(!badRange.ok);
  assert.match(JSON.stringify(badRange.errors), /range 9-3 ends before it starts/);
});

test('the README WAF examples are valid configs that mean what the text says', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
  const section = readme.slice(readme.indexOf('## Web application firewall'), readme.indexOf('## Rate limits'));
  const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  assert.equal(blocks.length, 2);
  const r = loadConfigText(`listeners: [{ address: 0 }]\nupstreams:\n  app: { servers: [http://127.0.0.1:3003] }\n${blocks[0]}${blocks[1]}`, 'README.md', {});
  assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
  assert.equal(r.config.waf?.crs, CRS);
  assert.equal(r.config.routes[0]?.waf, undefined);
  assert.deepEqual(r.config.routes[1]?.waf?.exclude.rules, [[920350, 920350]]);
});
