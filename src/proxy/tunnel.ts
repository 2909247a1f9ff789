import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ReasonCode } from '../errors/index.js';
import type { ResponseHead } from '../pipeline/types.js';
import type { ForwardSettings } from './headers.js';

/** What a tunnel needs of its exchange (structurally: no import of exchange.ts). */
export interface TunnelHost {
  readonly socket: Socket;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly runtime: { readonly config: { readonly upgrade: { readonly idle_timeout: number } }; readonly forward: ForwardSettings };
  readonly requestId: string;
  reason: ReasonCode | undefined;
  /** The tunnel head (the 101, or 200 on HTTP/2): built by tunnelHead, edited by the response phase, written by openTunnel. */
  response: ResponseHead | undefined;
}
