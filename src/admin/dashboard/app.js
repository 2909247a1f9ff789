// usher's live dashboard (issue #15): plain browser JavaScript, no build step. It reads the admin
// listener's event stream (GET /events, server-sent events) and draws four uPlot charts (requests
// per second, 5xx share, p50, p99) for the top routes by traffic among those the filter keeps,
// a table of the routes, the upstreams' servers, the latest errors, the certificates and the
// config with its reload history. With 1,000 routes it charts a few and lists the top 50: the
// filter (a substring, or /regex/) picks among all of them.
'use strict';
(function () {
  /** Seconds of history kept (the server replays up to 300 on connect). */
  const KEEP = 300;
  /** Routes are ranked by their requests over this many seconds. */
  const RANK = 60;
  const TABLE_ROWS = 50;
  const ERRORS_KEPT = 100;
  const ERRORS_SHOWN = 15;
  const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d', '#7c3aed', '#0d9488', '#b91c1c', '#1d4ed8', '#a16207', '#be185d', '#15803d', '#6d28d9', '#c2410c', '#0e7490'];

  const state = {
    /** {t (s), ms, routes: Map name → [count, errors, p50, p99], total: [count, errors, p50, p99]} */
    ticks: [],
    errors: [],
    status: null,
    upstreams: null,
    certificates: null,
    filter: '',
    topN: 8,
    /** uPlot instances by chart id; their data is what they draw. */
    charts: {},
    chartKey: '',
    connected: false,
    allErrors: false,
  };
  // For a test (and a curious operator's console).
  window.usherDashboard = state;

  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children (strings become text: nothing is parsed as HTML). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    for (const c of children) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  const fmtMs = (v) => (v === null || v === undefined ? '–' : v === 0 ? '0' : v < 1 ? `${(v * 1000).toFixed(0)} µs` : v < 1000 ? `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms` : `${(v / 1000).toFixed(2)} s`);
  const fmtRate = (v) => (v === null || v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const fmtPct = (v) => (v === null || v === undefined ? '–' : `${v < 1 && v > 0 ? v.toFixed(2) : v.toFixed(1)} %`);
  const routeName = (n) => (n === '' ? '(no route)' : n);

  function ago(iso) {
    if (!iso) return '–';
    const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
    return s < 1 ? 'now' : s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : s < 172800 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} d ago`;
  }

  /** The filter box: text matches anywhere (case-insensitive); /regex/ is a regular expression. */
  function matcher(text) {
    const t = text.trim();
    if (t === '') return () => true;
    const re = /^\/(.*)\/([a-z]*)$/.exec(t);
    if (re) {
      try {
        const r = new RegExp(re[1], re[2].includes('i') ? re[2] : `${re[2]}i`);
        return (n) => r.test(n);
      } catch {
        return () => false;
      }
    }
    const low = t.toLowerCase();
    return (n) => routeName(n).toLowerCase().includes(low);
  }

  // ---- the stream --------------------------------------------------------------------------

  function connect() {
    const es = new EventSource('events');
    const setConn = (s, text) => {
      const c = $('conn');
      c.dataset.state = s;
      c.textContent = text;
    };
    es.addEventListener('open', () => {
      state.connected = true;
      setConn('live', 'live');
    });
    es.addEventListener('error', () => {
      state.connected = false;
      setConn('down', es.readyState === EventSource.CLOSED ? 'disconnected (reload the page)' : 'reconnecting…');
    });
    es.addEventListener('tick', (e) => {
      const d = JSON.parse(e.data);
      const routes = new Map();
      for (const [name, count, errors, p50, p99] of d.routes) routes.set(name, [count, errors, p50, p99]);
      const t = Math.round(d.t / 1000);
      // A reconnect replays ticks the page has: keep one per second.
      while (state.ticks.length > 0 && state.ticks[state.ticks.length - 1].t >= t) state.ticks.pop();
      state.ticks.push({ t, ms: d.ms, routes, total: d.total });
      if (state.ticks.length > KEEP) state.ticks.splice(0, state.ticks.length - KEEP);
      for (const err of d.errors) state.errors.unshift(err);
      if (state.errors.length > ERRORS_KEPT) state.errors.length = ERRORS_KEPT;
      schedule('routes');
      if (d.errors.length > 0) schedule('errors');
    });
    es.addEventListener('upstreams', (e) => {
      state.upstreams = JSON.parse(e.data);
      schedule('upstreams');
    });
    es.addEventListener('status', (e) => {
      state.status = JSON.parse(e.data);
      schedule('status');
    });
    es.addEventListener('certificates', (e) => {
      state.certificates = JSON.parse(e.data);
      schedule('certificates');
    });
  }

  // Rendering waits for the next frame: a replay of 300 ticks draws once.
  const dirty = new Set();
  let frame = 0;
  function schedule(what) {
    dirty.add(what);
    if (frame === 0) frame = requestAnimationFrame(render);
  }
  // A tab in the background gets no frames: draw on a timer too, at most once a second.
  setInterval(() => {
    if (dirty.size > 0) render();
  }, 1000);

  function render() {
    frame = 0;
    const what = new Set(dirty);
    dirty.clear();
    if (what.has('routes')) renderRoutes();
    if (what.has('upstreams')) renderUpstreams();
    if (what.has('errors')) renderErrors();
    if (what.has('status')) renderStatus();
    if (what.has('certificates')) renderCertificates();
  }

  // ---- routes and charts -------------------------------------------------------------------

  const perSecond = (tick, count) => count / ((tick.ms || 1000) / 1000);

  function renderRoutes() {
    const ticks = state.ticks;
    const last = ticks[ticks.length - 1];
    if (last !== undefined) {
      $('ov-rps').textContent = fmtRate(perSecond(last, last.total[0]));
      $('ov-err').textContent = last.total[0] === 0 ? '–' : fmtPct((last.total[1] / last.total[0]) * 100);
      $('ov-p50').textContent = fmtMs(last.total[2]);
      $('ov-p99').textContent = fmtMs(last.total[3]);
    }
    // Rank every route seen by its requests over the last RANK seconds; keep those the filter matches.
    const match = matcher(state.filter);
    const recent = new Map();
    for (let i = Math.max(0, ticks.length - RANK); i < ticks.length; i++) {
      for (const [name, r] of ticks[i].routes) recent.set(name, (recent.get(name) || 0) + r[0]);
    }
    const ranked = [...recent.entries()].filter(([n]) => match(n)).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    $('route-count').textContent = `${ranked.length} route${ranked.length === 1 ? '' : 's'} with traffic in the last ${RANK} s${state.filter.trim() ? ' match the filter' : ''}`;
    drawCharts(ranked.slice(0, state.topN).map(([n]) => n));

    const body = $('route-table').tBodies[0];
    const rows = ranked.slice(0, TABLE_ROWS).map(([name, total]) => {
      const r = last === undefined ? undefined : last.routes.get(name);
      return el(
        'tr',
        { 'data-route': name },
        el('td', null, routeName(name)),
        el('td', { class: 'num' }, r ? fmtRate(perSecond(last, r[0])) : '0'),
        el('td', { class: r && r[1] > 0 ? 'num bad' : 'num' }, r ? fmtPct((r[1] / r[0]) * 100) : '–'),
        el('td', { class: 'num' }, r ? fmtMs(r[2]) : '–'),
        el('td', { class: 'num' }, r ? fmtMs(r[3]) : '–'),
        el('td', { class: 'num' }, total),
      );
    });
    if (ranked.length > TABLE_ROWS) rows.push(el('tr', null, el('td', { colspan: 6, class: 'muted' }, `and ${ranked.length - TABLE_ROWS} more: narrow the filter`)));
    if (rows.length === 0) rows.push(el('tr', null, el('td', { colspan: 6, class: 'muted' }, ticks.length === 0 ? 'waiting for the first second of data…' : 'no requests in the last minute')));
    body.replaceChildren(...rows);
  }

  const CHARTS = [
    { id: 'chart-rps', title: 'requests/s', value: (tick, r) => (r ? perSecond(tick, r[0]) : 0), fmt: fmtRate },
    { id: 'chart-err', title: '5xx %', value: (tick, r) => (r && r[0] > 0 ? (r[1] / r[0]) * 100 : null), fmt: fmtPct },
    { id: 'chart-p50', title: 'p50 latency', value: (tick, r) => (r ? r[2] : null), fmt: fmtMs },
    { id: 'chart-p99', title: 'p99 latency', value: (tick, r) => (r ? r[3] : null), fmt: fmtMs },
  ];

  /** Redraws the four charts for `names` (plus "all routes"); rebuilt only when the set of series or the width changes. */
  function drawCharts(names) {
    const ticks = state.ticks;
    const xs = ticks.map((t) => t.t);
    const width = Math.max(280, $('chart-rps').clientWidth || 400);
    const key = `${width}\u0000${names.join('\u0000')}`;
    for (const c of CHARTS) {
      const data = [xs, ticks.map((t) => c.value(t, t.total[0] > 0 ? t.total : undefined))];
      for (const n of names) data.push(ticks.map((t) => c.value(t, t.routes.get(n))));
      const existing = state.charts[c.id];
      if (existing && key === state.chartKey) {
        existing.setData(data);
        continue;
      }
      if (existing) existing.destroy();
      const series = [
        {},
        { label: 'all routes', stroke: '#111827', width: 2, dash: [6, 3], value: (u, v) => c.fmt(v) },
        ...names.map((n, i) => ({ label: routeName(n), stroke: COLORS[i % COLORS.length], width: 1.5, value: (u, v) => c.fmt(v) })),
      ];
      state.charts[c.id] = new uPlot(
        {
          title: c.title,
          width,
          height: 220,
          series,
          scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
          axes: [{}, { size: 70, values: (u, vals) => vals.map((v) => c.fmt(v)) }],
          legend: { live: true },
        },
        data,
        $(c.id),
      );
    }
    state.chartKey = key;
  }

  // ---- upstreams -----------------------------------------------------------------------------

  function renderUpstreams() {
    const body = $('upstream-table').tBodies[0];
    const ups = state.upstreams ? state.upstreams.upstreams : [];
    let up = 0;
    let all = 0;
    const rows = [];
    for (const u of ups) {
      u.servers.forEach((s, i) => {
        all++;
        if (s.verdict === 'up') up++;
        const check = s.last_check;
        const checkText = u.active_checks === false ? 'no active checks' : check === null ? 'not yet' : `${ago(check.at)}: ${check.ok ? 'ok' : 'failed'}${check.latency_ms !== null ? `, ${fmtMs(check.latency_ms)}` : ''}${check.detail ? ` (${check.detail})` : ''}`;
        const ejection = s.ejected ? `${s.reason}; ejected until ${new Date(s.ejected_until).toLocaleTimeString()}${s.ejected_in_workers ? ` in worker ${s.ejected_in_workers.join(', ')}` : ''}` : s.reason;
        const weight = s.weight.overridden ? `${s.weight.effective} (set; configured ${s.weight.configured})` : String(s.weight.effective);
        rows.push(
          el(
            'tr',
            { 'data-upstream': u.name, 'data-server': s.id, 'data-verdict': s.verdict },
            el('td', null, i === 0 ? u.name : ''),
            el('td', { title: s.id }, s.address),
            el('td', null, el('span', { class: `badge ${s.verdict}` }, s.verdict), s.slow_start ? ' slow start' : '', s.backup ? ' backup' : ''),
            el('td', { class: check && !check.ok ? 'bad' : undefined }, checkText),
            el('td', null, ejection),
            el('td', { class: 'num' }, s.ejections),
            el('td', { class: 'num' }, s.inflight),
            el('td', { class: 'num' }, weight),
          ),
        );
      });
    }
    if (rows.length === 0) rows.push(el('tr', null, el('td', { colspan: 8, class: 'muted' }, 'no upstreams configured')));
    body.replaceChildren(...rows);
    $('ov-up').textContent = all === 0 ? '–' : `${up} / ${all}`;
    $('ov-up').className = up < all ? 'value bad' : 'value';
  }

  // ---- errors --------------------------------------------------------------------------------

  function renderErrors() {
    const body = $('error-table').tBodies[0];
    const rows = state.errors.slice(0, state.allErrors ? ERRORS_KEPT : ERRORS_SHOWN).map((e) =>
      el(
        'tr',
        { 'data-request-id': e.request_id },
        el('td', null, new Date(e.at).toLocaleTimeString()),
        el('td', { class: e.status >= 500 ? 'num bad' : 'num' }, e.status === 0 ? '–' : e.status),
        el('td', null, e.reason === null ? '–' : el('code', null, e.reason)),
        el('td', null, routeName(e.route)),
        el('td', { class: 'target' }, `${e.method} ${e.target}`),
        el('td', null, e.server === null ? '–' : e.server),
        el('td', null, el('code', null, e.request_id)),
      ),
    );
    if (rows.length === 0) rows.push(el('tr', null, el('td', { colspan: 7, class: 'muted' }, 'none since this page opened')));
    const more = state.errors.length - rows.length;
    if (more > 0) {
      const show = el('a', { href: '#errors' }, `show ${more} more`);
      show.addEventListener('click', (ev) => {
        ev.preventDefault();
        state.allErrors = true;
        schedule('errors');
      });
      rows.push(el('tr', null, el('td', { colspan: 7, class: 'muted' }, show)));
    }
    body.replaceChildren(...rows);
  }

  // ---- status and config ---------------------------------------------------------------------

  function renderStatus() {
    const s = state.status;
    if (!s) return;
    $('version').textContent = `${s.version} · node ${s.node} · up ${Math.round(s.uptime_seconds / 60)} min`;
    $('ov-inflight').textContent = String(s.inflight);
    const info = [
      ['source', s.config.source],
      ['hash', s.config.hash.slice(0, 16)],
      ['loaded', `${new Date(s.config.loaded_at).toLocaleString()} (${ago(s.config.loaded_at)})`],
      ['routes', s.config.routes],
      ['upstreams', s.config.upstreams],
      ['listeners', s.listeners.map((l) => `${l.address ?? `${l.host}:${l.port}`}${l.tls ? ' (TLS)' : ''}`).join(', ')],
      ['requests', s.requests],
      ['metrics', s.metrics ? 'on (GET /metrics)' : 'off'],
      ['access log', s.access_log === null ? 'off' : `${s.access_log.format} to ${s.access_log.file}: ${s.access_log.lines} lines, ${s.access_log.dropped} dropped`],
      ['tracing', s.tracing === null ? 'off' : `${s.tracing.endpoint}, ratio ${s.tracing.sample_ratio}: ${s.tracing.spans.exported} spans exported, ${s.tracing.spans.dropped} dropped, ${s.tracing.spans.failed} failed`],
    ];
    $('config-info').replaceChildren(...info.flatMap(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
    const workers = s.workers || [];
    $('worker-table').tBodies[0].replaceChildren(
      ...(workers.length === 0
        ? [el('tr', null, el('td', { colspan: 7, class: 'muted' }, 'one process (no workers)'))]
        : workers.map((w) =>
            el('tr', null, el('td', null, w.id), el('td', null, w.pid ?? '–'), el('td', null, el('span', { class: `badge ${w.state === 'serving' ? 'up' : 'down'}` }, w.state)), el('td', { class: 'num' }, w.restarts), el('td', { class: 'num' }, w.requests ?? '–'), el('td', { class: 'num' }, w.inflight ?? '–'), el('td', null, w.config_hash === s.config.hash ? 'current' : 'behind')),
          )),
    );
    const reloads = [...s.reloads].reverse();
    $('reload-table').tBodies[0].replaceChildren(
      ...(reloads.length === 0
        ? [el('tr', null, el('td', { colspan: 5, class: 'muted' }, 'no reload since the start'))]
        : reloads.map((r) => el('tr', null, el('td', null, new Date(r.at).toLocaleString()), el('td', null, r.source), el('td', { class: r.result === 'success' ? '' : 'bad' }, r.result), el('td', null, r.file ?? ''), el('td', { class: 'pre' }, (r.errors || []).join('\n'))))),
    );
  }

  function renderCertificates() {
    const c = state.certificates;
    const body = $('cert-table').tBodies[0];
    if (!c || c.error) {
      body.replaceChildren(el('tr', null, el('td', { colspan: 6, class: 'muted' }, c ? c.error : '…')));
      return;
    }
    const rows = c.certificates.map((x) =>
      el(
        'tr',
        null,
        el('td', null, x.names.join(', ')),
        el('td', null, x.issuer),
        el('td', null, new Date(x.not_after).toLocaleDateString()),
        el('td', { class: x.expires_in_days < 14 ? 'num bad' : x.expires_in_days < 30 ? 'num warn' : 'num' }, x.expires_in_days),
        el('td', null, x.source.type === 'acme' ? `ACME (${x.source.domain}), renews ${new Date(x.source.next_renewal).toLocaleDateString()}${x.source.renewal_failures ? `, ${x.source.renewal_failures} failures` : ''}` : `file ${x.source.cert}`),
        el('td', null, x.listeners.join(', ')),
      ),
    );
    for (const p of c.acme_pending) rows.push(el('tr', null, el('td', null, p.domain), el('td', { colspan: 3, class: 'warn' }, `ACME order pending (${p.failures} failures)`), el('td', null, `next attempt ${new Date(p.next_attempt).toLocaleTimeString()}`), el('td', null, '')));
    if (rows.length === 0) rows.push(el('tr', null, el('td', { colspan: 6, class: 'muted' }, 'no TLS listener')));
    body.replaceChildren(...rows);
  }

  // ---- controls ------------------------------------------------------------------------------

  $('filter').addEventListener('input', (e) => {
    state.filter = e.target.value;
    schedule('routes');
  });
  $('topn').addEventListener('change', (e) => {
    state.topN = Number(e.target.value);
    schedule('routes');
  });
  window.addEventListener('resize', () => schedule('routes'));
  // "3 s ago" moves on even when nothing else does.
  setInterval(() => schedule('upstreams'), 5000);

  connect();
})();
