// The balancers' names, as `balance:` spells them: the one list the config schema's enum and the
// factory registry (index.ts, typed by it, so a name without a factory does not compile) share.
// A file of its own so that the config layer reads the names without loading the balancers.
export const BALANCER_NAMES = ['round_robin', 'least_request', 'least_conn', 'random', 'hash', 'sticky'] as const;
export type BalancerName = (typeof BALANCER_NAMES)[number];
