// A route's drain policy (routes[].drain): what happens to its long-lived connections —
// WebSocket tunnels, SSE streams (text/event-stream), gRPC calls — when a reload changes or
// removes the route. Connections on a route the reload left alone keep running, through any
// number of reloads (src/server/drain/index.ts decides which is which; docs/config.md and the
// README's "Reloads and long-lived connections" give the table).
import { Type } from '@sinclair/typebox';
import { duration, object } from '../../config/schema-kit.js';
import { parseDuration } from '../../config/units.js';

export const DRAIN_DEFAULTS = { grace: '30s', close_after: '10s' } as const;

export interface DrainPolicy {
  /** ms a long-lived connection keeps going after the reload that changed or removed its route; then usher closes it gracefully. */
  grace: number;
  /** ms after that graceful close by which a connection still open is cut. */
  close_after: number;
}

export const DrainSchema = object(
  {
    grace: Type.Optional(
      duration(
        'How long a long-lived connection of this route (a WebSocket, an SSE stream, a gRPC call) keeps running after a reload changed or removed the route. Then usher closes it gracefully: a WebSocket gets a close frame 1001 (going away) both ways, an SSE stream ends, a gRPC call ends with grpc-status 14 (UNAVAILABLE).',
        DRAIN_DEFAULTS.grace,
      ),
    ),
    close_after: Type.Optional(
      duration('How long after that graceful close a connection that is still open is cut (both sides closed).', DRAIN_DEFAULTS.close_after),
    ),
  },
  {
    description:
      "What a reload that changes or removes this route does to its long-lived connections (WebSockets, SSE streams, gRPC calls). A reload that leaves the route as it was keeps them open. Changing only `drain` is no change to the route: its connections then follow the new policy. Ordinary requests in flight always finish on the config they started with.",
  },
);

export type DrainInput = { grace?: string | number; close_after?: string | number };

export function normalizeDrain(d: DrainInput | undefined): DrainPolicy {
  return { grace: parseDuration(d?.grace ?? DRAIN_DEFAULTS.grace), close_after: parseDuration(d?.close_after ?? DRAIN_DEFAULTS.close_after) };
}
