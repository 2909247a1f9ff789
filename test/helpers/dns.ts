import { createSocket, type RemoteInfo } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';

/** A DNS server on 127.0.0.1 (UDP, port 0) answering A/AAAA from a table the test edits. */
export interface TestDns {
  /** "127.0.0.1:port", for `dns.servers`. */
  server: string;
  records: Map<string, string[]>;
  /** Queries answered so far. */
  queries: number;
  close(): Promise<void>;
}

export async function startDns(records: Record<string, string[]>): Promise<TestDns> {
  const socket = createSocket('udp4');
  const state: TestDns = {
    server: '',
    records: new Map(Object.entries(records)),
    queries: 0,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const query = dnsPacket.decode(msg);
    const q = query.questions?.[0];
    if (q === undefined) return;
    state.queries++;
    const wanted = q.type === 'AAAA' ? 6 : 4;
    const addresses = (state.records.get(q.name) ?? []).filter((a) => (a.includes(':') ? 6 : 4) === wanted);
    const known = state.records.has(q.name);
    const reply = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (known ? 0 : 3), // rcode 3: NXDOMAIN
      questions: [q],
      answers: addresses.map((data) => ({ type: q.type as 'A' | 'AAAA', name: q.name, ttl: 1, class: 'IN' as const, data })),
    });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  state.server = `127.0.0.1:${(socket.address() as AddressInfo).port}`;
  return state;
}
