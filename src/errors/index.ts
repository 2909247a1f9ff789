export { REASONS, STATUS_TEXT, ProxyError } from './codes.js';
export type { ReasonCode, ReasonInfo, ErrorSource } from './codes.js';
export { classifyUpstreamError } from './upstream.js';
