import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawStatus } from '../helpers/client.js';
import { RawConnection, responseCount, within } from '../helpers/raw.js';
import { proxyTo, waitFor } from '../helpers/usher.js';

const KEEP_ALIVE = 400;

function heads(received: string): string[] {
  return received.split(/\r\n\r\n/).filter((part) => /^HTTP\/1\.1 \d{3} /.test(part));
}

test('HTTP/1.1 responses carry no Keep-Alive field (RFC 9112 Appendix C.2.2); keep-alive works and idle connections close', async (t) => {
  const { up, u } = await proxyTo(
    t,
    'a',
    (req, res) => {
      req.resume();
      res.end('a'); // Content-Length framing: the reply's end is visible in the raw bytes
    },
    { timeouts: { keep_alive: `${KEEP_ALIVE}ms` } },
  );
  const c = new RawConnection(u.port);
  t.after(() => c.destroy());
  c.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => responseCount(c.received) === 1 && c.received.endsWith('\r\n\r\na'), 5000, 'the first response');
  c.write('GET /two HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => responseCount(c.received) === 2 && c.received.endsWith('\r\n\r\na'), 5000, 'the second response on the same connection');
  for (const head of heads(c.received)) {
    assert.equal(rawStatus(head), 200);
    assert.doesNotMatch(head, /^keep-alive:/im, `no Keep-Alive field: ${head}`);
    assert.doesNotMatch(head, /^connection: *close/im, 'the connection is kept');
  }
  assert.equal(up.requests.length, 2);
  // The default keep_alive is 5s: the bound fails the test if the configured 400ms is not applied.
  await within(c.closed, 3000, 'the idle connection to be closed');
  assert.equal(c.error, undefined, 'closed cleanly, not reset');
  assert.equal(responseCount(c.received), 2, 'nothing is written on an idle close');
});

test('keep_alive times idle gaps only: a request that waits on its upstream longer than keep_alive, also pipelined, is answered', async (t) => {
  const { u } = await proxyTo(
    t,
    'a',
    (req, res) => {
      req.resume();
      // A slow upstream: three keep_alive periods with no byte on the client connection.
      if (req.url === '/slow') setTimeout(() => res.end('slow'), KEEP_ALIVE * 3);
      else res.end('fast');
    },
    { timeouts: { keep_alive: `${KEEP_ALIVE}ms` } },
  );
  const c = new RawConnection(u.port);
  t.after(() => c.destroy());
  c.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => c.received.endsWith('\r\n\r\nfast'), 5000, 'the first response');
  // Idle after it; then a slow request with a fast one pipelined behind it.
  c.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => responseCount(c.received) === 3 || c.ended, 10_000, 'both pipelined responses');
  assert.equal(responseCount(c.received), 3, `all three answered: ${JSON.stringify(c.received)}`);
  assert.match(c.received, /\r\n\r\nfast[\s\S]*\r\n\r\nslow[\s\S]*\r\n\r\nfast$/);
  await within(c.closed, 3000, 'the idle connection to be closed afterwards');
  assert.equal(c.error, undefined, 'closed cleanly, not reset');
});
