import { beforeAll, describe, expect, it } from 'vitest';
import { asUser } from '../../../helpers/app.ts';
import { buildStripeApp, createPackage, type StripeTestApp, startCheckout } from './stripe-helpers.ts';

let t: StripeTestApp;
let pkg: { id: string };

beforeAll(async () => {
  // A hung Stripe is given up on after STRIPE_TIMEOUT_MS per attempt.
  t = await buildStripeApp({ STRIPE_TIMEOUT_MS: '300' });
  pkg = await createPackage(t.app, { name: 'Hung', credits: 10, price: 100 });
});

const calls = (method: string, path: string) =>
  t.fake.requests.filter((r) => r.method === method && r.path.startsWith(path)).length;

describe('STRIPE_TIMEOUT_MS with Stripe hung', () => {
  it('a checkout poll answers the pending purchase after one bounded read (the page polls again)', async () => {
    const { purchaseId, session } = await startCheckout(t, 'hung_user', pkg.id);
    const sessionId = session.id as string;
    t.fake.hang();
    try {
      const before = calls('GET', `/v1/checkout/sessions/${sessionId}`);
      const res = await t.app.inject({
        method: 'GET',
        url: `/api/v1/credits/checkout/${sessionId}`,
        headers: asUser('hung_user'),
      });
      expect(res.statusCode).toBe(200);
      expect(res.json().data.purchase).toMatchObject({ id: purchaseId, status: 'pending' });
      expect(calls('GET', `/v1/checkout/sessions/${sessionId}`) - before).toBe(1);
    } finally {
      t.fake.hang(false);
    }
  });

  it('creating a Checkout Session is tried twice (one retry, same idempotency key), then 503', async () => {
    t.fake.hang();
    try {
      const before = calls('POST', '/v1/checkout/sessions');
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/credits/checkout',
        headers: asUser('hung_user'),
        payload: { packageId: pkg.id },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'service_unavailable' });
      const posts = t.fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/checkout/sessions');
      expect(posts.length - before).toBe(2);
      const [first, second] = posts.slice(-2);
      expect(second?.headers['idempotency-key']).toBe(first?.headers['idempotency-key']);
    } finally {
      t.fake.hang(false);
    }
  });
});
