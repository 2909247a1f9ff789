// A real OTLP/HTTP receiver for tests: an HTTP server on 127.0.0.1:0 that decodes what arrives
// (ExportTraceServiceRequest, JSON) into flat spans with their attributes as plain values.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  traceState: string | undefined;
  name: string;
  kind: number;
  start: bigint;
  end: bigint;
  status: number;
  attributes: Record<string, string | number>;
  resource: Record<string, string | number>;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  /** Every export request: its path, head, number of spans, their span ids, and the status it was answered. */
  exports: { path: string; headers: IncomingHttpHeaders; spans: number; spanIds: string[]; status: number }[];
  /** The status to answer (200 by default); 'hang' never answers. */
  mode: number | 'hang';
  /** Statuses to answer first, one per export, before `mode` applies. */
  answers: number[];
  /** A Retry-After header sent with every non-2xx answer. */
  retryAfter: string | undefined;
  close(): Promise<void>;
}

type OtlpAttr = { key: string; value: { stringValue?: string; intValue?: string | number } };
const attrs = (list: OtlpAttr[] | undefined) =>
  Object.fromEntries((list ?? []).map((a) => [a.key, a.value.stringValue ?? Number(a.value.intValue)])) as Record<string, string | number>;

/** `port`: listen there (a receiver that comes up where a dead one was); 0 by default. */
export async function startOtlpReceiver(port = 0): Promise<OtlpReceiver> {
  const r: OtlpReceiver = { url: '', spans: [], exports: [], mode: 200, answers: [], retryAfter: undefined, close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = r.answers.shift() ?? r.mode;
      if (status === 'hang') return;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: { resource: { attributes: OtlpAttr[] }; scopeSpans: { spans: Record<string, unknown>[] }[] }[];
      };
      let n = 0;
      const spanIds: string[] = [];
      for (const rs of body.resourceSpans) {
        const resource = attrs(rs.resource.attributes);
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            n++;
            spanIds.push(s.spanId as string);
            if (status !== 200) continue;
            r.spans.push({
              traceId: s.traceId as string,
              spanId: s.spanId as string,
              parentSpanId: s.parentSpanId as string | undefined,
              traceState: s.traceState as string | undefined,
              name: s.name as string,
              kind: s.kind as number,
              start: BigInt(s.startTimeUnixNano as string),
              end: BigInt(s.endTimeUnixNano as string),
              status: (s.status as { code: number }).code,
              attributes: attrs(s.attributes as OtlpAttr[]),
              resource,
            });
          }
        }
      }
      r.exports.push({ path: req.url!, headers: req.headers, spans: n, spanIds, status });
      res.writeHead(status, { 'content-type': 'application/json', ...(status >= 300 && r.retryAfter !== undefined ? { 'retry-after': r.retryAfter } : {}) });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return r;
}
