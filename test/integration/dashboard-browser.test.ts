// The live dashboard (issue #15 pt 4) in a real browser: Debian's chromium driven by
// playwright-core (scripts/system-deps.js lists it) loads the admin listener's page, logging in
// with the token in the URL fragment; it sees the charts draw from live traffic, the filter box
// narrow them, a killed upstream server go down in the health table, an error with its reason
// code and request id, and saves a screenshot to test-artifacts/dashboard.png (ignored by git).
// No timing assertion: every wait is a generous wait-for on the page's DOM or data.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { repoRoot } from '../helpers/cli.js';
import { request } from '../helpers/client.js';
import { adminUrl } from '../helpers/admin.js';
import { setup, TOKEN, traffic } from '../helpers/dashboard.js';
import { startUpstream } from '../helpers/upstream.js';
import { startUsher } from '../helpers/usher.js';

// The page's globals, for the functions playwright runs in the browser.
declare const window: unknown;
declare const document: { querySelector(s: string): { textContent: string | null } | null; querySelectorAll(s: string): { length: number } };

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const ARTIFACTS = join(repoRoot, 'test-artifacts');

test('the dashboard in chromium: charts draw from live traffic, a killed server goes down in the health table, an error shows its reason and request id', { timeout: 120_000 }, async (t) => {
  const { b, u, admin } = await setup(t);
  const load = traffic(u.url);
  t.after(() => load.stop());

  const profile = mkdtempSync(join(tmpdir(), 'usher-dashboard-chromium-'));
  t.after(() => rmSync(profile, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 1000 },
  });
  t.after(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The first load is the login page's 401: expected.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  // The token in the fragment: the login page posts it, the cookie opens the dashboard.
  await page.goto(`${admin}/#token=${TOKEN}`);
  await page.waitForSelector('#chart-rps', { timeout: 30_000 });
  assert.equal(new URL(page.url()).hash, '', 'the token left the address bar');

  // Charts: one uPlot canvas per chart, and the requests/s series of "all routes" and of the routes with data.
  await page.waitForFunction(
    () => {
      const d = (window as unknown as { usherDashboard: { charts: Record<string, { data: (number | null)[][] }> } }).usherDashboard;
      const c = d.charts['chart-rps'];
      return document.querySelectorAll('.chart canvas').length === 4 && c !== undefined && c.data.length >= 3 && c.data[1]!.some((v) => v !== null && v > 0) && c.data[2]!.some((v) => v !== null && v > 0);
    },
    undefined,
    { timeout: 30_000 },
  );
  const charted = await page.evaluate(() => {
    const d = (window as unknown as { usherDashboard: { charts: Record<string, { series: { label: string }[]; data: unknown[][] }> } }).usherDashboard;
    return Object.fromEntries(Object.entries(d.charts).map(([id, c]) => [id, { labels: c.series.slice(1).map((s) => s.label), points: c.data[0]!.length }]));
  });
  for (const id of ['chart-rps', 'chart-err', 'chart-p50', 'chart-p99']) {
    assert.ok(charted[id] !== undefined, `${id} drawn`);
    assert.deepEqual([...charted[id]!.labels].sort(), ['all routes', 'api', 'web'], `${id}: ${JSON.stringify(charted[id])}`);
    assert.ok(charted[id]!.points > 0);
  }
  await page.waitForSelector('#route-table tr[data-route="api"]');
  await page.waitForSelector('#route-table tr[data-route="web"]');
  // p50 of a route is a latency in the table (not "–") once it has requests.
  await page.waitForFunction(() => /\d/.test(document.querySelector('#route-table tr[data-route="api"] td:nth-child(4)')?.textContent ?? ''));

  // The filter box narrows the table and the charts to the routes it matches.
  await page.fill('#filter', 'we');
  await page.waitForFunction(() => document.querySelector('#route-table tr[data-route="api"]') === null && document.querySelector('#route-table tr[data-route="web"]') !== null);
  await page.waitForFunction(() => {
    const c = (window as unknown as { usherDashboard: { charts: Record<string, { series: { label: string }[] }> } }).usherDashboard.charts['chart-rps']!;
    return c.series.slice(1).map((s) => s.label).join() === 'all routes,web';
  });
  await page.fill('#filter', '');

  // Both servers up, then b killed: its row turns down (active checks every 200 ms).
  const row = (server: string, verdict: string) => `#upstream-table tr[data-upstream="app"][data-server="${server}"][data-verdict="${verdict}"]`;
  await page.waitForSelector(row(b.url, 'up'), { timeout: 30_000 });
  await b.close();
  await page.waitForSelector(row(b.url, 'down'), { timeout: 30_000 });
  const detail = await page.textContent(row(b.url, 'down'));
  assert.match(detail ?? '', /failed/, 'the last check says it failed');

  // An error: the broken route's 502, with the reason code and the request id the client got.
  const r = await request(`${u.url}/broken`);
  assert.equal(r.status, 502);
  const id = /request_id: (\S+)/.exec(r.body)?.[1];
  assert.ok(id !== undefined, r.body);
  await page.waitForSelector(`#error-table tr[data-request-id="${id}"]`, { timeout: 30_000 });
  const errorRow = await page.textContent(`#error-table tr[data-request-id="${id}"]`);
  assert.match(errorRow ?? '', /502/);
  assert.match(errorRow ?? '', /upstream_connect_refused/);

  // Config source and reloads are shown.
  await page.waitForFunction(() => /<test>/.test(document.querySelector('#config-info')?.textContent ?? ''));

  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = join(ARTIFACTS, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(readFileSync(shot).length > 10_000, 'a screenshot was saved');
  assert.deepEqual(problems, []);
  assert.ok(load.sent() > 0);
});

test('the dashboard stays usable with 1,000 routes: it charts the top 8 and lists the top 50 of those with traffic, and the filter finds any route', { timeout: 120_000 }, async (t) => {
  const up = await startUpstream('app', (req, res) => {
    req.resume();
    res.end('ok');
  });
  t.after(() => up.close());
  const ROUTES = 1000;
  const routes = Array.from({ length: ROUTES }, (_, i) => ({ name: `r${i}`, match: { path: `/r${i}/` }, upstream: 'app' }));
  const u = await startUsher({ admin: { address: '127.0.0.1:0', token: TOKEN }, upstreams: { app: { servers: [up.url] } }, routes });
  t.after(() => u.close());
  // Traffic on 120 of the routes (r0..r118 and r999): more than the table lists.
  const busy = [...Array.from({ length: 119 }, (_, i) => i), 999];
  let running = true;
  const loop = (async () => {
    while (running) {
      await Promise.all(busy.map((i) => request(`${u.url}/r${i}/x`).catch(() => undefined)));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  t.after(async () => {
    running = false;
    await loop;
  });

  const profile = mkdtempSync(join(tmpdir(), 'usher-dashboard-chromium-'));
  t.after(() => rmSync(profile, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 1000 } });
  t.after(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${adminUrl(u)}/#token=${TOKEN}`);
  await page.waitForSelector('#chart-rps', { timeout: 30_000 });

  // Every busy route seen: the count says 120, the table holds 50 rows and a line for the rest.
  await page.waitForFunction(() => /^120 routes/.test(document.querySelector('#route-count')?.textContent ?? ''), undefined, { timeout: 30_000 });
  assert.equal(await page.locator('#route-table tbody tr[data-route]').count(), 50);
  assert.match((await page.textContent('#route-table tbody')) ?? '', /and 70 more: narrow the filter/);
  // The charts: "all routes" and the top 8.
  const series = await page.evaluate(() => (window as unknown as { usherDashboard: { charts: Record<string, { series: unknown[] }> } }).usherDashboard.charts['chart-rps']!.series.length);
  assert.equal(series, 1 + 1 + 8, 'x, all routes and 8 routes');
  // The filter finds a route outside the top 50 (a regex picks exactly one).
  await page.fill('#filter', '/^r999$/');
  await page.waitForFunction(() => document.querySelectorAll('#route-table tbody tr[data-route]').length === 1 && document.querySelector('#route-table tr[data-route="r999"]') !== null, undefined, { timeout: 10_000 });
  assert.deepEqual(problems, []);
});
