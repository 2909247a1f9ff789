import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLAG, frame, FRAME, literal, parseFrames, rawH2, requestBlock } from '../helpers/h2.js';
import { proxyTo, waitFor } from '../helpers/usher.js';

// RFC 9113 §8.2.1: a field value must not hold NUL, LF or CR (nor start or end with SP/HTAB);
// such a request is malformed (§8.1.1) and must not be forwarded. Node's HTTP/2 layer never lets
// usher see one: nghttp2 flags the field and node's OnInvalidHeader callback (src/node_http2.cc,
// "Ignore invalid header fields by default", no option to change it) tells nghttp2 to drop that
// field alone; the request arrives without it. usher cannot refuse what it is not shown, so this
// pins what does hold (README, "HTTP/2 from clients"): the field never reaches the upstream,
// whatever byte it hides, and the rest of the request is proxied. If a node release starts
// refusing such requests (stream reset) or handing them over, this test fails and usher can
// answer them itself.
test('h2: a field value with CR, LF, NUL or edge whitespace never reaches the upstream (node drops the field)', async (t) => {
  const { up, u } = await proxyTo(t, 'a', undefined, { listeners: [{ address: '127.0.0.1:0', http2: {} }] });
  const c = await rawH2(u.port);
  t.after(() => c.socket.destroy());
  const values = ['smuggled\r\nx-admin: 1', 'a\nb', 'nul\0byte', 'cr\ronly', ' leading-space', 'trailing-tab\t'];
  values.forEach((value, i) => {
    // HPACK literals without indexing (RFC 7541 §6.2.2) carry any byte; node's client would refuse to send these.
    const block = Buffer.concat([requestBlock(`/v${i}`), literal('x-bad', value), literal('x-good', `ok${i}`)]);
    c.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1 + 2 * i, block));
  });
  const answered = () => parseFrames(c.received()).filter((f) => (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM) && f.streamId > 0);
  await waitFor(() => answered().length === values.length || c.closed(), 5000, 'every stream answered');
  assert.equal(up.requests.length, values.length, 'each request was proxied without the field');
  for (const r of up.requests) {
    assert.equal(r.headers['x-bad'], undefined, `${r.url}: the invalid field was not forwarded`);
    assert.equal(r.headers['x-admin'], undefined, `${r.url}: nothing was split into a second field`);
    assert.equal(r.headers['x-good'], `ok${r.url.slice(2)}`, `${r.url}: the other fields were`);
    assert.ok(!r.rawHeaders.some((v) => /[\r\n\0]/.test(v)), `${r.url}: no CR, LF or NUL anywhere in the upstream head`);
  }
});
