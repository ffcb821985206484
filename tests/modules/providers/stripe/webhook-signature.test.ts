import { describe, expect, it } from 'vitest';
import { buildTestApp, balanceOf } from '../../../helpers/app.ts';
import { sessionObject, signedDelivery, stripeEvent } from '../../../helpers/fake-stripe.ts';
import {
  buildStripeApp,
  countRows,
  createPackage,
  deliver,
  purchaseRow,
  startCheckout,
} from './stripe-helpers.ts';
import { expectError } from '../../../helpers/envelope.ts';

const WEBHOOK = '/webhooks/stripe';
const JSON_TYPE = 'application/json; charset=utf-8';

describe('Stripe webhook signature', () => {
  it('refuses a wrong signature, a stale timestamp, a missing header and a re-serialised body, writing nothing', async () => {
    const t = await buildStripeApp();
    const pkg = await createPackage(t.app);
    const { purchaseId, session } = await startCheckout(t, 'sig_user', pkg.id);
    const event = stripeEvent('checkout.session.completed', sessionObject(session));

    const wrongSecret = signedDelivery(event, { secret: 'whsec_not_the_endpoint_secret' });
    const stale = signedDelivery(event, { timestamp: Math.floor(Date.now() / 1000) - 301 });
    const good = signedDelivery(event);
    const attempts = [
      { name: 'wrong signature', payload: wrongSecret.payload, signature: wrongSecret.signature },
      { name: 'stale timestamp', payload: stale.payload, signature: stale.signature },
      { name: 'missing header', payload: good.payload, signature: undefined },
      // Same JSON, other bytes: what a framework that parses and re-serialises the body would verify.
      {
        name: 're-serialised body',
        payload: JSON.stringify(JSON.parse(good.payload)),
        signature: good.signature,
      },
      { name: 'tampered body', payload: good.payload.replace('"paid"', '"PAID"'), signature: good.signature },
    ];
    for (const attempt of attempts) {
      const res = await t.app.inject({
        method: 'POST',
        url: WEBHOOK,
        headers: {
          'content-type': JSON_TYPE,
          ...(attempt.signature ? { 'stripe-signature': attempt.signature } : {}),
        },
        payload: attempt.payload,
      });
      expect(res.statusCode, attempt.name).toBe(400);
      expect(res.json(), attempt.name).toMatchObject({
        isSuccess: false,
        statusCode: 400,
        code: 'invalid_signature',
        data: null,
      });
    }

    expect(await countRows(t, 'webhook_events')).toBe(0);
    expect(await countRows(t, 'ledger_entries')).toBe(0);
    expect((await purchaseRow(t, purchaseId)).status).toBe('pending');
    expect((await balanceOf(t.app, 'sig_user')).balance).toBe(0);

    // The same event, signed as Stripe signs it, is accepted: the refusals were about the signature only.
    const ok = await deliver(t.app, event);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ isSuccess: true, data: { outcome: 'processed', purchaseId } });
    expect((await balanceOf(t.app, 'sig_user')).balance).toBe(100);

    // Without STRIPE_WEBHOOK_SECRET the endpoint cannot verify anything: 503, in the envelope.
    const unconfigured = await buildTestApp();
    const res = await unconfigured.app.inject({
      method: 'POST',
      url: WEBHOOK,
      headers: { 'content-type': JSON_TYPE, 'stripe-signature': good.signature },
      payload: good.payload,
    });
    expectError(res, 503, 'service_unavailable');
    expect(await countRows(unconfigured, 'webhook_events')).toBe(0);
  });
});
