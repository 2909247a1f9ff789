// The kinds of key a rate-limit bucket can have, as config sees them (no request types here, so
// config.ts can import it). The readers are in key.ts. A new kind is one entry here, one reader
// in key.ts and one arm of KeyPartSchema in config.ts.
export type KeyPart = { kind: 'client_ip' } | { kind: 'route' } | { kind: 'header'; name: string } | { kind: 'cookie'; name: string } | { kind: 'jwt_claim'; name: string };

/** Whether the part is known before routing (a global policy runs in early_request). */
export const BEFORE_ROUTING: Readonly<Record<KeyPart['kind'], boolean>> = Object.freeze({ client_ip: true, route: false, header: true, cookie: false, jwt_claim: false });
