// The downstream HTTP/1.1 request parser (src/server/h1/parser.ts, issue #17): one parser per
// connection, as the listener will hold it, parsing a browser's GET head (12 fields) and a
// 10-field POST with a 64-byte body, whole heads in one chunk (the common case). Beside it, the
// same bytes through llhttp, node:http's parser, by its binding (process.binding('http_parser'):
// the C++ parser with the head's fields handed to JS as one array, what node:http's
// parserOnHeadersComplete receives, before node builds IncomingMessage and req.headers).
import { RequestParser } from '../../dist/src/server/h1/parser.js';

const GET = Buffer.from(
  'GET /articles/2026/12/http-parsing?ref=home HTTP/1.1\r\n' +
    'Host: example.com\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n' +
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n' +
    'Accept-Language: en-GB,en;q=0.5\r\n' +
    'Accept-Encoding: gzip, deflate, br, zstd\r\n' +
    'Connection: keep-alive\r\n' +
    'Cookie: session=4f1c2d3e; theme=dark\r\n' +
    'Upgrade-Insecure-Requests: 1\r\n' +
    'Sec-Fetch-Dest: document\r\n' +
    'Sec-Fetch-Mode: navigate\r\n' +
    'Sec-Fetch-Site: none\r\n' +
    'Priority: u=0, i\r\n\r\n',
  'latin1',
);

const BODY = 'x'.repeat(64);
const POST = Buffer.from(
  'POST /api/v1/orders HTTP/1.1\r\n' +
    'Host: api.example.com\r\n' +
    'User-Agent: client/2.3\r\n' +
    'Accept: application/json\r\n' +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${BODY.length}\r\n` +
    'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig\r\n' +
    'X-Request-Id: 7b0e4c1a-2f55-4f0e-9d1c-31a9b7e2c001\r\n' +
    'Accept-Encoding: gzip\r\n' +
    'Cache-Control: no-cache\r\n' +
    'Connection: keep-alive\r\n\r\n' +
    BODY,
  'latin1',
);

let heads = 0;
let bodyBytes = 0;
const sink = {
  onRequest: (h) => ((heads += h.headers.length), true),
  onBody: (c) => (bodyBytes += c.length, true),
  onComplete: () => true,
};
const parser = new RequestParser(sink);
const parse = (buf) => () => parser.execute(buf, 0) + heads;

// llhttp through node's binding, set up as node:http's server sets up its parser.
const { HTTPParser } = process.binding('http_parser');
const ll = new HTTPParser();
ll[HTTPParser.kOnHeadersComplete] = (major, minor, headers) => ((heads += headers.length), 0);
ll[HTTPParser.kOnBody] = (b) => (bodyBytes += b.length);
ll[HTTPParser.kOnMessageComplete] = () => {};
ll[HTTPParser.kOnExecute] = () => {};
ll.initialize(HTTPParser.REQUEST, {}, 0, 0);
const llparse = (buf) => () => ll.execute(buf) + heads + bodyBytes;

for (const buf of [GET, POST]) {
  if (parser.execute(buf, 0) !== buf.length) throw new Error(`h1-parser bench: ${parser.error}`);
  if (ll.execute(buf) !== buf.length) throw new Error('h1-parser bench: llhttp refused the input');
}

export const cases = [
  { name: `h1 request parser: GET head, 12 fields (${GET.length} B)`, fn: parse(GET), iterations: 500_000 },
  { name: `h1 request parser: POST, 10 fields + 64 B (${POST.length} B)`, fn: parse(POST), iterations: 500_000 },
  { name: 'llhttp (node binding): the same GET head', fn: llparse(GET), iterations: 500_000 },
  { name: 'llhttp (node binding): the same POST', fn: llparse(POST), iterations: 500_000 },
];
