// Key types of certificates, and the server order that makes SNI present the right one.
//
// Node before 24 (nodejs/node#54235) does not replace the handshake's certificate with the one
// of the SNI context: it adds it (SSL_use_certificate fills the slot of its key type), so the
// default certificate stays in its own slot. With the default and the SNI certificate of one
// key type, the slot is overwritten and all is well. With an ECDSA default and an RSA SNI
// certificate, both are loaded and OpenSSL presents the type it prefers: in TLS 1.3 the first
// shared signature algorithm with a certificate, in TLS 1.2 the first shared cipher suite.
// With SSL_OP_CIPHER_SERVER_PREFERENCE (honorCipherOrder) both lists follow the server's order,
// and that order comes from the default context. So the default context ranks every key type
// other than its own first: the other slot is filled only when SNI chose a certificate of that
// type, and then that certificate wins; otherwise the default's own type is all there is.
// This works for two types, RSA and ECDSA; other mixes are refused (mixedKeyTypeProblem).
import { X509Certificate } from 'node:crypto';

export type KeyType = string;

/** "rsa", "ec", "ed25519", "rsa-pss", ... of a PEM certificate chain (its first certificate). */
export function keyTypeOf(certPem: string): KeyType {
  return new X509Certificate(certPem).publicKey.asymmetricKeyType ?? 'unknown';
}

const LABEL: Record<string, string> = { rsa: 'RSA', ec: 'ECDSA', ed25519: 'Ed25519', ed448: 'Ed448', 'rsa-pss': 'RSA-PSS', dsa: 'DSA' };
const label = (t: KeyType) => LABEL[t] ?? t;

/** Why a certificate of type `named` cannot be chosen by SNI beside a default of type `dflt`, or undefined when it can. */
export function mixedKeyTypeProblem(dflt: KeyType, named: KeyType): string | undefined {
  if (dflt === named || ((dflt === 'rsa' || dflt === 'ec') && (named === 'rsa' || named === 'ec'))) return undefined;
  const an = /^[AEIOU]/.test(label(named)) ? 'an' : 'a';
  const and = /^[AEIOU]/.test(label(dflt)) ? 'an' : 'a';
  return `${an} ${label(named)} certificate cannot be chosen by SNI beside ${and} ${label(dflt)} default certificate: Node.js before 24 keeps the default in the handshake and may present it instead (nodejs/node#54235); usher sorts out RSA beside ECDSA only`;
}

const ECDSA_SIGALGS = ['ecdsa_secp256r1_sha256', 'ecdsa_secp384r1_sha384', 'ecdsa_secp521r1_sha512'];
const RSA_SIGALGS = [
  'rsa_pss_rsae_sha256', 'rsa_pss_rsae_sha384', 'rsa_pss_rsae_sha512',
  'rsa_pss_pss_sha256', 'rsa_pss_pss_sha384', 'rsa_pss_pss_sha512',
  'rsa_pkcs1_sha256', 'rsa_pkcs1_sha384', 'rsa_pkcs1_sha512',
];
// Kept so that client certificates (mTLS) of these types still verify: the list also becomes
// the CertificateRequest's signature_algorithms (RFC 8446 §4.3.2).
const OTHER_SIGALGS = ['ed25519', 'ed448'];

/**
 * The default context's order when SNI may choose a certificate of the other type than the
 * default's (`dflt`): that type's signature algorithms and TLS 1.2 suites first. `ciphers` is the
 * configured list; "+aRSA" / "+aECDSA" moves the default type's TLS 1.2 suites to the end and
 * keeps the rest of the order (OpenSSL ciphers(1), "+"), whatever the list is written with.
 */
export function preferOtherThan(dflt: KeyType, ciphers: string): { sigalgs: string; ciphers: string } | undefined {
  if (dflt !== 'ec' && dflt !== 'rsa') return undefined;
  const sigalgs = (dflt === 'ec' ? [...RSA_SIGALGS, ...ECDSA_SIGALGS] : [...ECDSA_SIGALGS, ...RSA_SIGALGS]).concat(OTHER_SIGALGS).join(':');
  // Only TLS 1.3 suites (Node sets those apart, and they name no key type): the signature
  // algorithms decide alone, and a lone "+aRSA" would leave OpenSSL "no cipher match".
  const tls12 = ciphers.split(':').some((c) => c.trim() !== '' && !c.trim().startsWith('TLS_'));
  return { sigalgs, ciphers: tls12 ? `${ciphers}:+a${dflt === 'ec' ? 'ECDSA' : 'RSA'}` : ciphers };
}
