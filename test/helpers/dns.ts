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
  /** Queries answered so far for one name (any type). */
  asked(name: string): number;
  /**
   * Resolves once every query that reached the server before this call has been counted: it
   * sends one query of its own and waits for the answer (one socket reads its datagrams in
   * order). For "nothing was asked" checks after a process ended, without a sleep.
   */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export async function startDns(records: Record<string, string[]>, srv: Record<string, SrvRecord[]> = {}): Promise<TestDns> {
  const socket = createSocket('udp4');
  const perName = new Map<string, number>();
  const state: TestDns = {
    server: '',
    records: new Map(Object.entries(records)),
    srv: new Map(Object.entries(srv)),
    queries: 0,
    asked: (name) => perName.get(name) ?? 0,
    settle: () => settle(socket),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const query = dnsPacket.decode(msg);
    const q = query.questions?.[0];
    if (q === undefined) return;
    state.queries++;
    perName.set(q.name, (perName.get(q.name) ?? 0) + 1);
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

/** The barrier behind TestDns.settle: one query from a fresh socket, answered (NXDOMAIN). */
function settle(server: ReturnType<typeof createSocket>): Promise<void> {
  const { port } = server.address() as AddressInfo;
  const client = createSocket('udp4');
  const id = Math.floor(Math.random() * 65536);
  return new Promise<void>((resolve, reject) => {
    client.on('error', reject);
    client.on('message', (msg: Buffer) => {
      if (dnsPacket.decode(msg).id !== id) return;
      client.close();
      resolve();
    });
    client.send(dnsPacket.encode({ type: 'query', id, questions: [{ type: 'A', name: 'settle.invalid' }] }), port, '127.0.0.1');
  });
}
