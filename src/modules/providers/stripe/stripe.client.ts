import Stripe from 'stripe';
import type { Config } from '../../../config.ts';

/**
 * One retry (with the SDK's backoff) for connection errors, timeouts, 409 and 5xx; every write carries an
 * idempotency key. Each attempt is bounded by STRIPE_TIMEOUT_MS (default 5 s; the SDK's own default is 80 s).
 */
export const STRIPE_MAX_NETWORK_RETRIES = 1;

/**
 * Per-call options for a read on a polled path (the success page's checkout poll): one attempt within
 * STRIPE_TIMEOUT_MS, no retry, since the page polls again and a retry would hold the request twice as long.
 */
export const POLL_READ = { maxNetworkRetries: 0 } as const;

/**
 * The Stripe SDK client, or null when `STRIPE_SECRET_KEY` is unset (checkout then answers 503).
 * `STRIPE_API_URL` (a local server in tests, a proxy in some deployments) gives host, port and protocol;
 * the SDK always adds its own `/v1/...` paths, so a path in the URL is ignored.
 */
export function createStripeClient(stripe: Config['stripe']): Stripe | null {
  if (!stripe.secretKey) return null;
  const options: Stripe.StripeConfig = {
    maxNetworkRetries: STRIPE_MAX_NETWORK_RETRIES,
    timeout: stripe.timeoutMs,
    telemetry: false,
    appInfo: { name: 'credits-service' },
  };
  if (stripe.apiUrl) {
    const url = new URL(stripe.apiUrl);
    const protocol = url.protocol === 'http:' ? 'http' : 'https';
    options.protocol = protocol;
    options.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    options.port = url.port ? Number(url.port) : protocol === 'http' ? 80 : 443;
  }
  return new Stripe(stripe.secretKey, options);
}

/**
 * Verifies `Stripe-Signature` against the raw body and parses the event; throws on a missing or wrong
 * signature, or a timestamp outside the tolerance. Needs no API key: only the endpoint's signing secret.
 */
export function constructStripeEvent(
  rawBody: Buffer | string,
  signature: string,
  secret: string,
  toleranceSeconds = 300,
): Stripe.Event {
  return Stripe.webhooks.constructEvent(rawBody, signature, secret, toleranceSeconds);
}

export type { Stripe };
