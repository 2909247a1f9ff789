// The live dashboard's per-request part (issue #15): what its collector (src/admin/live.ts,
// subscribed to `usher:request:done` while a dashboard is open) costs per finished request —
// publishing a done event to it, and the collector's listener alone. Its per-second part (the
// tick) is measured in bench/README.md. From the compiled tree (run `npm run build` first).
import { LiveStats } from '../../dist/src/admin/live.js';
import { doneChannel } from '../../dist/src/observability/events.js';

const live = new LiveStats({ runtime: { clusters: new Map() } });
live.take(); // subscribes, as a dashboard's first tick does
const server = { live };
const ctx = { route: { name: 'api' }, requestId: 'r', method: 'GET', target: '/small', upstream: { name: 'origin', server: 's' } };
let i = 0;
const event = { server, ctx, status: 200, durationMs: 0.7, reason: null };
// One take per 14,000 events: a tick a second at the bench's small-GET rate on one core.
function publish() {
  event.durationMs = (i & 7) * 0.3;
  doneChannel.publish(event);
  if (++i % 14_000 === 0) live.take();
}
const onDone = live.onDone;
function listener() {
  event.durationMs = (i & 7) * 0.3;
  onDone(event);
  if (++i % 14_000 === 0) live.take();
}

export const cases = [
  { name: 'dashboard: a done event published to the live collector', fn: publish, iterations: 5_000_000 },
  { name: 'dashboard: the live collector alone, per request', fn: listener, iterations: 5_000_000 },
];
