import { describe, expect, it } from 'vitest';
import { asUser, buildTestApp, createApiKey } from '../../../helpers/app.ts';
import { startFakeStripe, stripeEnv } from '../../../helpers/fake-stripe.ts';
import { buildStripeApp, countRows, createPackage, purchaseRow } from './stripe-helpers.ts';
import { expectError } from '../../../helpers/envelope.ts';

const CHECKOUT = '/api/v1/credits/checkout';

describe('Stripe checkout', () => {
  it('sends Stripe the Checkout Session params: payment mode, one line item, purchase ids, idempotency key, URLs', async () => {
    const t = await buildStripeApp();
    const pkg = await createPackage(t.app, {
      name: 'Big pack',
      description: 'Lots',
      credits: 500,
      price: 1999,
    });
    const priced = await createPackage(t.app, { name: 'Priced pack', stripePriceId: 'price_123abc' });

    const success = 'https://admin.example.test/paid?sid={CHECKOUT_SESSION_ID}&x=1';
    const res = await t.app.inject({
      method: 'POST',
      url: CHECKOUT,
      headers: asUser('buyer_1'),
      payload: { packageId: pkg.id, successUrl: success },
    });
    expect(res.statusCode).toBe(201);
    const { purchaseId } = res.json().data;

    expect(t.fake.requests).toHaveLength(1);
    const sent = t.fake.requests[0]!;
    expect(sent.method).toBe('POST');
    expect(sent.path).toBe('/v1/checkout/sessions');
    expect(sent.headers.authorization).toBe('Bearer sk_test_fake_key');
    expect(sent.headers['idempotency-key']).toBe(`checkout-session:${purchaseId}`);
    const ids = { purchaseId, userId: 'buyer_1', packageId: pkg.id };
    expect(sent.params).toEqual({
      mode: 'payment',
      line_items: [
        {
          price_data: {
            currency: 'usd',
            unit_amount: '1999',
            product_data: { name: 'Big pack', description: 'Lots' },
          },
          quantity: '1',
        },
      ],
      client_reference_id: purchaseId,
      metadata: ids,
      payment_intent_data: { metadata: ids },
      // Given in the body (an allowed origin), `{CHECKOUT_SESSION_ID}` left for Stripe to fill.
      success_url: success,
      // The configured default.
      cancel_url: 'https://app.example.test/credits',
    });

    // A package with a Stripe Price is sold by that price.
    const second = await t.app.inject({
      method: 'POST',
      url: CHECKOUT,
      headers: asUser('buyer_2'),
      payload: { packageId: priced.id },
    });
    expect(second.statusCode).toBe(201);
    const params = t.fake.requests[1]!.params;
    expect(params.line_items).toEqual([{ price: 'price_123abc', quantity: '1' }]);
    expect(params.success_url).toBe('https://app.example.test/credits/done?session_id={CHECKOUT_SESSION_ID}');

    // A redirect to an origin not in CHECKOUT_ALLOWED_ORIGINS is refused before anything is created.
    const purchasesBefore = await countRows(t, 'purchases');
    const evil = await t.app.inject({
      method: 'POST',
      url: CHECKOUT,
      headers: asUser('buyer_1'),
      payload: { packageId: pkg.id, cancelUrl: 'https://app.example.test.evil.example/phish' },
    });
    expect(evil.statusCode).toBe(400);
    expect(evil.json()).toMatchObject({ code: 'validation_failed' });
    expect(evil.json().errors[0]).toContain('body.cancelUrl');
    expect(t.fake.requests).toHaveLength(2);
    expect(await countRows(t, 'purchases')).toBe(purchasesBefore);
  });

  it('answers 201 with sessionId, url, purchaseId and the package; the purchase is pending with the session as providerRef', async () => {
    const t = await buildStripeApp();
    const pkg = await createPackage(t.app, { name: 'Starter', credits: 120, price: 499, currency: 'eur' });

    const res = await t.app.inject({
      method: 'POST',
      url: CHECKOUT,
      headers: asUser('buyer_1'),
      payload: { packageId: pkg.id },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({ isSuccess: true, statusCode: 201, errors: [] });
    const session = [...t.fake.sessions.values()][0]!;
    expect(body.data).toEqual({
      sessionId: session.id,
      url: session.url,
      purchaseId: expect.stringMatching(/^pur_/),
      package: { id: pkg.id, name: 'Starter', credits: 120, priceCents: 499, currency: 'eur' },
    });
    const purchase = await purchaseRow(t, body.data.purchaseId);
    expect(purchase).toMatchObject({
      user_id: 'buyer_1',
      package_id: pkg.id,
      provider: 'stripe',
      provider_ref: session.id,
      status: 'pending',
      credits: 120,
      price: 499,
      currency: 'eur',
    });
    const history = await t.app.inject({
      method: 'GET',
      url: '/api/v1/credit-packages/purchases',
      headers: asUser('buyer_1'),
    });
    expect(history.json().data.items[0]).toMatchObject({ id: body.data.purchaseId, status: 'pending' });

    // The backend variant: an API key with checkout:create, the user in the body.
    const key = await createApiKey(t.app, ['checkout:create']);
    const api = await t.app.inject({
      method: 'POST',
      url: `${CHECKOUT}/api`,
      headers: { 'x-api-key': key },
      payload: { packageId: pkg.id, userId: 'svc_user' },
    });
    expect(api.statusCode).toBe(201);
    expect((await purchaseRow(t, api.json().data.purchaseId)).user_id).toBe('svc_user');
    const wrongScope = await createApiKey(t.app, ['credits:debit']);
    const forbidden = await t.app.inject({
      method: 'POST',
      url: `${CHECKOUT}/api`,
      headers: { 'x-api-key': wrongScope },
      payload: { packageId: pkg.id, userId: 'svc_user' },
    });
    expect(forbidden.statusCode).toBe(403);

    // Unknown package 404, inactive 409, nothing sent to Stripe for either.
    const sent = t.fake.requests.length;
    const unknown = await t.app.inject({
      method: 'POST',
      url: CHECKOUT,
      headers: asUser('buyer_1'),
      payload: { packageId: 'pkg_nope' },
    });
    expect(unknown.statusCode).toBe(404);
    const inactive = await createPackage(t.app, { isActive: false });
    const conflict = await t.app.inject({
      method: 'POST',
      url: CHECKOUT,
      headers: asUser('buyer_1'),
      payload: { packageId: inactive.id },
    });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().code).toBe('conflict');
    expect(t.fake.requests).toHaveLength(sent);
  });

  it('Stripe down (5xx or unreachable): 503 and the purchase marked failed; not configured: 503 and no purchase', async () => {
    const t = await buildStripeApp();
    const pkg = await createPackage(t.app);

    t.fake.fail(500);
    const res = await t.app.inject({
      method: 'POST',
      url: CHECKOUT,
      headers: asUser('buyer_1'),
      payload: { packageId: pkg.id },
    });
    expectError(res, 503, 'service_unavailable');
    expect(res.body).not.toMatch(/sk_test|stack|api_error/);
    // One retry, with the same idempotency key.
    expect(t.fake.requests.length).toBe(2);
    expect(new Set(t.fake.requests.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    const { rows: failed } = await t.pg.query('select status, provider_ref from purchases');
    expect(failed).toEqual([{ status: 'failed', provider_ref: null }]);

    await t.fake.close();
    const down = await t.app.inject({
      method: 'POST',
      url: CHECKOUT,
      headers: asUser('buyer_1'),
      payload: { packageId: pkg.id },
    });
    expect(down.statusCode).toBe(503);
    expect(down.json().code).toBe('service_unavailable');
    const { rows } = await t.pg.query('select status from purchases order by created_at');
    expect(rows.map((r) => r.status)).toEqual(['failed', 'failed']);

    // Without STRIPE_SECRET_KEY: 503 and nothing is created.
    const fake = await startFakeStripe();
    const { STRIPE_SECRET_KEY: _unset, ...env } = stripeEnv(fake);
    const unconfigured = await buildTestApp(env);
    const pkg2 = await createPackage(unconfigured.app);
    const none = await unconfigured.app.inject({
      method: 'POST',
      url: CHECKOUT,
      headers: asUser('buyer_1'),
      payload: { packageId: pkg2.id },
    });
    expect(none.statusCode).toBe(503);
    expect(none.json().code).toBe('service_unavailable');
    expect(await countRows(unconfigured, 'purchases')).toBe(0);
    expect(fake.requests).toHaveLength(0);
    await fake.close();
  });
});
