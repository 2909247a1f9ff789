import { createSocket, type RemoteInfo } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';

export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** A DNS server on 127.0.0.1 (UDP, port 0) answering A/AAAA and SRV from tables the test edits. */
export interface TestDns {
  /** "127.0.0.1:port", for `dns.servers`. */
  server: string;
  records: Map<string, string[]>;
  srv: Map<string, SrvRecord[]>;
  /** Queries answered so far. */
  queries: number;
  close(): Promise<void>;
}

export async function startDns(records: Record<string, string[]>, srv: Record<string, SrvRecord[]> = {}): Promise<TestDns> {
  const socket = createSocket('udp4');
  const state: TestDns = {
    server: '',
    records: new Map(Object.entries(records)),
    srv: new Map(Object.entries(srv)),
    queries: 0,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const query = dnsPacket.decode(msg);
    const q = query.questions?.[0];
    if (q === undefined) return;
    state.queries++;
    if (q.type === 'SRV') {
      const found = state.srv.get(q.name);
      const answer = dnsPacket.encode({
        type: 'response',
        id: query.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | (found ? 0 : 3),
        questions: [q],
        answers: (found ?? []).map((data) => ({ type: 'SRV' as const, name: q.name, ttl: 1, class: 'IN' as const, data })),
      });
      socket.send(answer, rinfo.port, rinfo.address);
      return;
    }
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
