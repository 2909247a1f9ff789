// The container's HEALTHCHECK (see the Dockerfile): exit 0 when usher answers 2xx, 1 otherwise.
// USHER_HEALTHCHECK_URL: what to ask (default: the admin API's GET /status on loopback);
// USHER_HEALTHCHECK_TOKEN: the admin token, sent as a bearer token when set.
/* global fetch, AbortSignal -- Node >= 18 */
const url = process.env.USHER_HEALTHCHECK_URL || 'http://127.0.0.1:9901/status';
const token = process.env.USHER_HEALTHCHECK_TOKEN;
const headers = token ? { authorization: `Bearer ${token}` } : {};
try {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(2500) });
  await res.arrayBuffer();
  if (res.status < 200 || res.status > 299) {
    console.error(`usher healthcheck: ${url} answered ${res.status}`);
    process.exit(1);
  }
} catch (err) {
  console.error(`usher healthcheck: ${url}: ${err.cause?.code ?? err.message}`);
  process.exit(1);
}
