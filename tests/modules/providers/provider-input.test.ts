import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { asUser } from '../../helpers/app.ts';
import { stripeEvent, WEBHOOK_SECRET } from '../../helpers/fake-stripe.ts';
import { deliver as deliverRc, purchaseEvent, RC_AUTH, rcBody } from '../../helpers/revenuecat.ts';
import { buildStripeApp, createPackage, deliver, type StripeTestApp } from './stripe/stripe-helpers.ts';
import { expectError } from '../../helpers/envelope.ts';
import { deepJson } from '../../http/hardening/hardening-helpers.ts';

/** Posts raw text to the Stripe webhook, correctly signed (at `timestamp`, seconds, when given). */
function deliverRaw(t: StripeTestApp, payload: string, timestamp?: number) {
  const signature = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: WEBHOOK_SECRET,
    ...(timestamp !== undefined ? { timestamp } : {}),
  });
  return t.app.inject({
    method: 'POST',
    url: '/webhooks/stripe',
    headers: { 'content-type': 'application/json', 'stripe-signature': signature },
    payload,
  });
}

async function storedPayload(t: StripeTestApp, provider: string, eventId: string) {
  const { rows } = await t.pg.query(
    'select event_id, payload from webhook_events where provider = $1 and event_id = $2',
    [provider, eventId],
  );
  return rows[0];
}

describe('Stripe webhook: verified deliveries never get a 5xx', () => {
  let t: StripeTestApp;
  beforeAll(async () => {
    t = await buildStripeApp({ REVENUECAT_WEBHOOK_AUTH: RC_AUTH });
  });

  it('a correctly signed body of null (or an array, a number) is a 400', async () => {
    for (const payload of ['null', '[]', '42', '"text"']) {
      expectError(await deliverRaw(t, payload), 400, 'validation_failed');
    }
  });

  it('NUL and lone surrogates in a verified event are stored as U+FFFD and answered 200', async () => {
    const event = stripeEvent('customer.updated', {
      id: 'cus_1',
      description: 'before\u0000after',
      name: 'lone \ud800 surrogate',
      metadata: { 'key\u0000': 'v' },
    });
    const res = await deliver(t.app, event);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ eventId: event.id, outcome: 'ignored' });
    const row = await storedPayload(t, 'stripe', event.id as string);
    expect(row.payload.data.object).toMatchObject({
      description: 'before\uFFFDafter',
      name: 'lone \uFFFD surrogate',
      metadata: { 'key\uFFFD': 'v' },
    });
    // A redelivery is the same event, found by its (storable) id.
    const again = await deliver(t.app, event);
    expect(again.statusCode).toBe(200);
    expect(again.json().data.outcome).toBe('duplicate');
  });

  it('an event id with NUL is stored under its storable id (200)', async () => {
    const event = stripeEvent('customer.updated', { id: 'cus_2' }, { id: 'evt_nul\u0000id' });
    const res = await deliver(t.app, event);
    expect(res.statusCode).toBe(200);
    expect(res.json().data.eventId).toBe('evt_nul\uFFFDid');
    expect(await storedPayload(t, 'stripe', 'evt_nul\uFFFDid')).toBeDefined();
  });

  it('a signed payload nested 10,000 levels deep is a 400, and the service keeps answering', async () => {
    const payload = `{"id":"evt_deep","type":"customer.updated","data":{"object":${deepJson(10_000)}}}`;
    expectError(await deliverRaw(t, payload), 400, 'validation_failed');
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('refuses a signature timestamp more than 300 s in the future (400 invalid_signature)', async () => {
    const event = JSON.stringify(stripeEvent('customer.updated', { id: 'cus_3' }));
    // The clock is read for each delivery, and "just past 300 s" is 310 s: on a loaded machine a delivery
    // that takes seconds must not bring a timestamp read earlier back within the tolerance.
    const now = () => Math.floor(Date.now() / 1000);
    for (const ahead of [10 * 365 * 86_400, 310]) {
      expectError(await deliverRaw(t, event, now() + ahead), 400, 'invalid_signature');
    }
    expect((await deliverRaw(t, event, now() + 200)).statusCode).toBe(200);
    expectError(await deliverRaw(t, event, now() - 301), 400, 'invalid_signature');
  });

  it('a lone surrogate in successUrl is a 400, and no purchase is created or failed', async () => {
    const pack = await createPackage(t.app);
    for (const field of ['successUrl', 'cancelUrl']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/credits/checkout',
        headers: asUser('buyer'),
        payload: { packageId: pack.id, [field]: 'https://app.example.test/done\ud800' },
      });
      expect(expectError(res, 400, 'validation_failed')).toMatch(new RegExp(`body\\.${field}`));
    }
    const { rows } = await t.pg.query("select count(*)::int as n from purchases where user_id = 'buyer'");
    expect(rows[0].n).toBe(0);
    expect(t.fake.sessions.size).toBe(0);
  });

  it('RevenueCat: NUL in a verified event is stored as U+FFFD and answered 200', async () => {
    const body = purchaseEvent('no_such_product', 'rc_user', 'txn_nul', { store: 'APP\u0000STORE' });
    const res = await deliverRc(t.app, body);
    expect(res.statusCode).toBe(200);
    const row = await storedPayload(t, 'revenuecat', body.event.id as string);
    expect(row.payload.event.store).toBe('APP\uFFFDSTORE');
  });

  it('RevenueCat: a body nested 10,000 levels deep is a 400', async () => {
    const body = rcBody('rc-non-renewing');
    const text = JSON.stringify(body).replace(/}$/, `,"deep":${deepJson(10_000)}}`);
    const res = await t.app.inject({
      method: 'POST',
      url: '/webhooks/revenuecat',
      headers: { authorization: RC_AUTH, 'content-type': 'application/json' },
      payload: text,
    });
    expectError(res, 400, 'validation_failed');
  });
});
