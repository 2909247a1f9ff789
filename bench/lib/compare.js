// --compare: the same proxy and scenario in two result files; CPU/req or req/s worse by more
// than the noise band (default 20%) is a regression.

/** Rows { scenario, proxy, metric, before, after, changePct, verdict } for every comparable pair. */
export function compareResults(before, after, thresholdPct) {
  const rows = [];
  for (const [scenario, now] of Object.entries(after.results)) {
    const then = before.results?.[scenario];
    if (!then) continue;
    for (const [proxy, row] of Object.entries(now.proxies)) {
      const old = then.proxies?.[proxy];
      if (row.status !== 'ok' || old?.status !== 'ok') continue;
      for (const [metric, higherIsBetter] of [['cpuUsPerReq', false], ['rps', true]]) {
        if (row[metric] == null || !old[metric]) continue;
        const changePct = ((row[metric] - old[metric]) / old[metric]) * 100;
        const worsePct = higherIsBetter ? -changePct : changePct;
        const verdict = worsePct > thresholdPct ? 'REGRESSION' : worsePct < -thresholdPct ? 'improved' : 'same';
        rows.push({ scenario, proxy, metric, before: old[metric], after: row[metric], changePct, verdict });
      }
    }
  }
  return rows;
}

export function compareMarkdown(rows, { beforeFile, afterFile, thresholdPct }) {
  const regressions = rows.filter((r) => r.verdict === 'REGRESSION').length;
  const lines = [
    `## Compared with ${beforeFile}${afterFile ? ` (${afterFile})` : ''}`,
    '',
    `Noise band ±${thresholdPct}%: ${regressions} regression(s).`,
    '',
    '| scenario | proxy | metric | before | after | change | verdict |',
    '|---|---|---|--:|--:|--:|---|',
  ];
  for (const r of rows) {
    const digits = r.metric === 'rps' ? 0 : 1;
    const sign = r.changePct >= 0 ? '+' : '';
    lines.push(
      `| ${r.scenario} | ${r.proxy} | ${r.metric === 'rps' ? 'req/s' : 'CPU µs/req'} | ${r.before.toFixed(digits)} | ` +
        `${r.after.toFixed(digits)} | ${sign}${r.changePct.toFixed(1)}% | ${r.verdict === 'same' ? '' : `**${r.verdict}**`} |`,
    );
  }
  return lines.join('\n');
}
