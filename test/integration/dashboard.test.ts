// The live dashboard (issue #15 pt 4) over plain sockets: the page, its files and the event
// stream need the token (or the cookie the login sets, which opens GET requests only); the
// stream's ticks count each request once, by route. The page in a real browser:
// dashboard-browser.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { request } from '../helpers/client.js';
import { setup, TOKEN } from '../helpers/dashboard.js';
import { MAX_CLIENTS } from '../../src/admin/dashboard.js';
import { openSse } from '../helpers/sse.js';
import { config, waitFor } from '../helpers/usher.js';

test('the page, its files and the event stream need the token; the login cookie opens GET requests only', { timeout: 120_000 }, async (t) => {
  const { a, u, admin } = await setup(t);
  const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

  // No token: a browser gets the login page (401), a client the JSON 401 as before; the stream is refused.
  const login = await request(`${admin}/`, { headers: html });
  assert.equal(login.status, 401);
  assert.match(login.headers['content-type'] as string, /^text\/html/);
  assert.match(login.body, /name="token"/);
  assert.equal((await request(`${admin}/`)).status, 401);
  const refused = await openSse(`${admin}/events`);
  assert.equal(refused.status, 401);
  refused.close();

  // The page's static files hold no data: served without the token (the login page needs its script and styles), from our sources and uPlot's package.
  const uplot = await request(`${admin}/dashboard/uPlot.iife.min.js`);
  assert.equal(uplot.status, 200);
  assert.match(uplot.headers['content-type'] as string, /javascript/);
  assert.equal(uplot.body, readFileSync(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'));
  assert.equal((await request(`${admin}/dashboard/uPlot.min.css`)).status, 200);
  assert.equal((await request(`${admin}/dashboard/app.js`)).status, 200);
  assert.equal((await request(`${admin}/dashboard/nope.js`)).status, 404);

  // A wrong token: back to the login page, no cookie.
  const wrong = await request(`${admin}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=not-the-token-at-all' });
  assert.equal(wrong.status, 303);
  assert.equal(wrong.headers.location, '/?login=failed');
  assert.equal(wrong.headers['set-cookie'], undefined);

  const ok = await request(`${admin}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(TOKEN)}` });
  assert.equal(ok.status, 303);
  const setCookie = String(ok.headers['set-cookie']);
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  assert.ok(!setCookie.includes(TOKEN), 'the cookie is not the token');
  const cookie = setCookie.split(';')[0]!;

  // The cookie: the page, the JSON views and the stream; not a change.
  const page = await request(`${admin}/`, { headers: { ...html, cookie } });
  assert.equal(page.status, 200);
  assert.match(page.body, /uPlot\.iife\.min\.js/);
  assert.match(page.headers['content-security-policy'] as string, /frame-ancestors 'none'/);
  assert.equal((await request(`${admin}/status`, { headers: { cookie } })).status, 200);
  const drain = await request(`${admin}/upstreams/app/servers/${encodeURIComponent(a.url)}/drain`, { method: 'POST', headers: { cookie } });
  assert.equal(drain.status, 401, 'a cookie never authorises a change');
  const forged = await openSse(`${admin}/events`, { cookie: `${cookie.split('=')[0]}=${'0'.repeat(64)}` });
  assert.equal(forged.status, 401);
  forged.close();

  const stream = await openSse(`${admin}/events`, { cookie });
  t.after(() => stream.close());
  assert.equal(stream.status, 200);
  assert.match(stream.headers['content-type'] as string, /^text\/event-stream/);
  await waitFor(() => stream.of('status').length > 0 && stream.of('upstreams').length > 0 && stream.of('certificates').length > 0, 10_000, 'status, upstreams and certificates');
  assert.equal(stream.of('status')[0].config.source, '<test>');
  // Requests sent now are in the ticks: counted once each, by route.
  await waitFor(() => stream.of('tick').length > 0, 10_000, 'a first tick');
  for (let i = 0; i < 5; i++) assert.equal((await request(`${u.url}/api/x`)).status, 200);
  const api = () => stream.of('tick').reduce((n: number, tick: { routes: [string, number][] }) => n + (tick.routes.find((r) => r[0] === 'api')?.[1] ?? 0), 0);
  await waitFor(() => api() >= 5, 10_000, 'the five requests in the ticks');
  assert.equal(api(), 5);

  // The bearer token still opens everything, the JSON index included.
  const index = await request(`${admin}/`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(index.status, 200);
  assert.ok((JSON.parse(index.body) as { endpoints: string[] }).endpoints.includes('GET /events'));
});

test('a reload with a new token ends the open event streams (the page must log in again); the old cookie no longer opens them', { timeout: 120_000 }, async (t) => {
  const { u, admin, spec } = await setup(t);
  const stream = await openSse(`${admin}/events`, { authorization: `Bearer ${TOKEN}` });
  t.after(() => stream.close());
  assert.equal(stream.status, 200);
  let ended = false;
  stream.ended.then(() => (ended = true), () => (ended = true));
  const port = Number(new URL(admin).port);
  // The admin listener's bound port: the same address, so the reload keeps it and applies the token.
  const next = config({ log: { level: 'warn' }, ...spec, admin: { address: `127.0.0.1:${port}`, token: `${TOKEN}-rotated` } });
  await u.usher.reload(next);
  await waitFor(() => ended, 10_000, 'the stream to end');
  const old = await openSse(`${admin}/events`, { authorization: `Bearer ${TOKEN}` });
  assert.equal(old.status, 401);
  old.close();
});

test('at most MAX_CLIENTS event streams: the next is refused with 503 too_many_streams and Retry-After; closing one lets a new one in', { timeout: 120_000 }, async (t) => {
  const { admin } = await setup(t);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const open = await Promise.all(Array.from({ length: MAX_CLIENTS }, () => openSse(`${admin}/events`, auth)));
  t.after(() => open.forEach((s) => s.close()));
  assert.deepEqual([...new Set(open.map((s) => s.status))], [200]);
  const refused = await openSse(`${admin}/events`, auth);
  assert.equal(refused.status, 503);
  assert.equal(refused.headers['retry-after'], '10');
  refused.close();
  // The streams still open are not disturbed by the refusal: each keeps receiving ticks.
  await waitFor(() => open.every((s) => s.events.some((e) => e.event === 'tick')), 15_000, 'a tick on every open stream');
  open[0]!.close();
  // The server sees the close asynchronously: a new stream is let in once it has.
  const statuses: number[] = [];
  const until = Date.now() + 10_000;
  for (;;) {
    const again = await openSse(`${admin}/events`, auth);
    statuses.push(again.status);
    again.close();
    if (again.status === 200) break;
    assert.equal(again.status, 503);
    assert.ok(Date.now() < until, `no stream let in within 10 s of one closing (${statuses.join(' ')})`);
    await new Promise((r) => setTimeout(r, 20));
  }
});
