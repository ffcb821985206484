import type { FastifyRequest } from 'fastify';

/**
 * Query parameters that may carry a credential (`?api_key=`, `?access_token=`, `?token=`, `?key=`,
 * `?secret=`, a password or signature): the service never reads credentials from the query, but a client
 * that sends one has still sent a live secret, and the URL is logged with every request.
 */
const CREDENTIAL_NAME = /(key|token|secret|passw|signature|sig$|jwt|auth|credential)/i;

export const REDACTED = '[redacted]';

/** `url` with the value of every credential-like query parameter replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      const rawName = eq < 0 ? part : part.slice(0, eq);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        // a bad %-encoding: judge the name as written
      }
      return eq >= 0 && CREDENTIAL_NAME.test(name) ? `${rawName}=${REDACTED}` : part;
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

/** The request as every log line shows it (Fastify's default fields), its URL redacted. */
export function serializeRequest(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** Headers that carry credentials: never logged. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["stripe-signature"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];
