// One request through a proxy before loading it: a proxy that answers wrongly (or not at all)
// for a scenario is reported "n/a" with the reason instead of being measured.
import { Buffer } from 'node:buffer';
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import { checkWebSocket } from './loadgen.js';

export async function checkScenario(scenario, url) {
  if (scenario.kind === 'ws') return checkWebSocket(url);
  const what = `${scenario.method ?? 'GET'} ${scenario.path}`;
  let status, bytes;
  try {
    ({ status, bytes } = await request(url + scenario.path, scenario));
  } catch (err) {
    throw new Error(`${what}: ${err.message}`);
  }
  if (status !== 200) throw new Error(`${what} answered ${status}`);
  if (bytes !== scenario.expectBytes) throw new Error(`${what} answered ${bytes} bytes, expected ${scenario.expectBytes}`);
}

function request(url, scenario) {
  const client = url.startsWith('https:') ? https : http;
  const body = scenario.body !== undefined ? Buffer.from(scenario.body) : scenario.bodyBytes ? Buffer.alloc(scenario.bodyBytes, 'x') : null;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: scenario.method ?? 'GET',
      agent: false,
      rejectUnauthorized: false, // our own self-signed certificate
      headers: {
        ...(body ? { 'content-type': scenario.contentType ?? 'application/octet-stream', 'content-length': body.length } : {}),
        ...(scenario.acceptEncoding ? { 'accept-encoding': scenario.acceptEncoding } : {}),
        ...(scenario.authorization ? { authorization: scenario.authorization } : {}),
        ...Object.fromEntries(scenario.headers ?? []),
      },
      timeout: 5000,
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.on('response', (res) => {
      let bytes = 0;
      const chunks = [];
      res.on('data', (chunk) => { bytes += chunk.length; if (scenario.acceptEncoding) chunks.push(chunk); });
      res.on('end', () => {
        if (!scenario.acceptEncoding) return resolve({ status: res.statusCode, bytes });
        // A compression scenario: the answer must be encoded as asked, and decode to the body.
        const coding = res.headers['content-encoding'];
        if (coding !== scenario.acceptEncoding) return reject(new Error(`answered without Content-Encoding: ${scenario.acceptEncoding} (does not compress)`));
        resolve({ status: res.statusCode, bytes: zlib.gunzipSync(Buffer.concat(chunks)).length });
      });
      res.on('error', reject);
    });
    req.end(body);
  });
}
