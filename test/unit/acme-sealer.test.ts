// The sealing of ACME secrets at rest in Redis (acme.storage.redis.encryption_key).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sealer } from '../../src/tls/acme/redis-store.js';

const PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';

test('sealed values open with the same key under the same Redis key name only', () => {
  const s = new Sealer('a key of at least sixteen characters');
  const sealed = s.seal('usher:acme:cert:a.test', PEM);
  assert.doesNotMatch(sealed, /PRIVATE KEY/);
  assert.notEqual(s.seal('usher:acme:cert:a.test', PEM), sealed, 'a fresh IV each time');
  assert.equal(s.open('usher:acme:cert:a.test', sealed), PEM);
  // Moved to another domain's key: the associated data differs, so it does not open.
  assert.throws(() => s.open('usher:acme:cert:b.test', sealed), /cannot be decrypted/);
  assert.throws(() => new Sealer('another key of sixteen characters').open('usher:acme:cert:a.test', sealed), /encryption_key differs/);
  assert.throws(() => new Sealer(undefined).open('usher:acme:cert:a.test', sealed), /is encrypted in Redis: set acme\.storage\.redis\.encryption_key/);
  // Tampered: GCM's tag catches it.
  const parts = sealed.split(':');
  const body = Buffer.from(parts.at(-1)!, 'base64');
  body[0] = body[0]! ^ 1;
  assert.throws(() => s.open('usher:acme:cert:a.test', [...parts.slice(0, -1), body.toString('base64')].join(':')), /cannot be decrypted/);
  // Written before encryption_key was set: read as it is; without a key nothing is sealed.
  assert.equal(s.open('usher:acme:account', PEM), PEM);
  assert.equal(new Sealer(undefined).seal('usher:acme:account', PEM), PEM);
});
