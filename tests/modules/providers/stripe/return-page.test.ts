import { beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, asUser, bearer, tokenFor, balanceOf } from '../../../helpers/app.ts';
import { sessionObject, stripeEvent } from '../../../helpers/fake-stripe.ts';
import {
  buildStripeApp,
  createPackage,
  deliver,
  ledgerRows,
  purchaseRow,
  type StripeTestApp,
  startCheckout,
} from './stripe-helpers.ts';
import { expectError } from '../../../helpers/envelope.ts';

let t: StripeTestApp;
let pkg: { id: string };

beforeAll(async () => {
  t = await buildStripeApp();
  pkg = await createPackage(t.app, { name: 'Hundred', credits: 100, price: 1000 });
});

const returnPage = (sessionId: string, headers: Record<string, string>) =>
  t.app.inject({ method: 'GET', url: `/api/v1/credits/checkout/${sessionId}`, headers });

/** What Stripe's session looks like once the customer paid: the fake then serves it as paid. */
function payAtStripe(session: Record<string, unknown>, changes: Record<string, unknown> = {}) {
  const paid = sessionObject(session, changes);
  t.fake.sessions.set(session.id as string, paid);
  return paid;
}

const sessionReads = (sessionId: string) =>
  t.fake.requests.filter((r) => r.method === 'GET' && r.path === `/v1/checkout/sessions/${sessionId}`).length;

describe('GET /api/v1/credits/checkout/{sessionId}: fulfilment on the success page', () => {
  it('pending and unpaid: still pending; paid at Stripe: fulfilled once, as the webhook would', async () => {
    const { purchaseId, session } = await startCheckout(t, 'rp_user', pkg.id);
    const sessionId = session.id as string;

    const before = await returnPage(sessionId, asUser('rp_user'));
    expect(before.statusCode).toBe(200);
    expect(before.json()).toMatchObject({
      isSuccess: true,
      data: { purchase: { id: purchaseId, status: 'pending', providerRef: sessionId } },
    });
    expect(sessionReads(sessionId)).toBe(1);
    expect((await balanceOf(t.app, 'rp_user')).balance).toBe(0);

    const paid = payAtStripe(session);
    const after = await returnPage(sessionId, asUser('rp_user'));
    expect(after.statusCode).toBe(200);
    expect(after.json().data.purchase).toMatchObject({ id: purchaseId, status: 'completed', credits: 100 });
    expect(after.json().data.purchase.completedAt).not.toBeNull();
    expect((await balanceOf(t.app, 'rp_user')).balance).toBe(100);
    expect(await ledgerRows(t, 'rp_user')).toEqual([
      expect.objectContaining({ type: 'grant', amount: 100, idempotency_key: `stripe:grant:${purchaseId}` }),
    ]);
    expect(await purchaseRow(t, purchaseId)).toMatchObject({ stripe_payment_intent_id: paid.payment_intent });

    // Polling on: no second read of Stripe once the purchase is not pending, and no second grant, even when
    // the webhook arrives afterwards.
    expect((await returnPage(sessionId, asUser('rp_user'))).json().data.purchase.status).toBe('completed');
    expect(sessionReads(sessionId)).toBe(2);
    const late = await deliver(t.app, stripeEvent('checkout.session.completed', paid));
    expect(late.json().data).toMatchObject({ outcome: 'processed', note: 'already granted' });
    expect(await ledgerRows(t, 'rp_user')).toHaveLength(1);
  });

  it('the webhook and the return page racing on one session grant once', async () => {
    for (let round = 0; round < 6; round++) {
      const user = `race_rp_${round}`;
      const { purchaseId, session } = await startCheckout(t, user, pkg.id);
      const paid = payAtStripe(session);
      const event = stripeEvent('checkout.session.completed', paid);
      const results = await Promise.all([
        returnPage(session.id as string, asUser(user)),
        deliver(t.app, event),
        returnPage(session.id as string, asUser(user)),
        deliver(t.app, stripeEvent('checkout.session.async_payment_succeeded', paid)),
        returnPage(session.id as string, asUser(user)),
      ]);
      expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200]);
      expect((await balanceOf(t.app, user)).balance).toBe(100);
      expect(await ledgerRows(t, user)).toEqual([
        expect.objectContaining({
          type: 'grant',
          amount: 100,
          idempotency_key: `stripe:grant:${purchaseId}`,
        }),
      ]);
      expect((await purchaseRow(t, purchaseId)).status).toBe('completed');
    }
    expect(await t.app.services.ledger.verify()).toEqual([]);
  });

  it('an expired session expires the purchase; an async payment still processing stays pending', async () => {
    const a = await startCheckout(t, 'rp_expired', pkg.id);
    t.fake.sessions.set(a.session.id as string, { ...a.session, status: 'expired' });
    const expired = await returnPage(a.session.id as string, asUser('rp_expired'));
    expect(expired.json().data.purchase).toMatchObject({ id: a.purchaseId, status: 'expired' });

    const b = await startCheckout(t, 'rp_async', pkg.id);
    payAtStripe(b.session, { payment_status: 'unpaid' });
    const processing = await returnPage(b.session.id as string, asUser('rp_async'));
    expect(processing.json().data.purchase).toMatchObject({ id: b.purchaseId, status: 'pending' });
    expect((await balanceOf(t.app, 'rp_async')).balance).toBe(0);
    expect((await balanceOf(t.app, 'rp_expired')).balance).toBe(0);
  });

  it("another user's or an unknown session: 404; admin and ops may read it; Stripe down: the purchase as it is", async () => {
    const { purchaseId, session } = await startCheckout(t, 'rp_owner', pkg.id);
    const sessionId = session.id as string;
    const other = await returnPage(sessionId, asUser('rp_intruder'));
    expectError(other, 404, 'not_found');
    expect((await returnPage('cs_test_unknown', asUser('rp_owner'))).statusCode).toBe(404);
    expect((await returnPage(sessionId, {})).statusCode).toBe(401);
    const ops = await returnPage(sessionId, bearer(tokenFor('ops_1', ['ops'])));
    expect(ops.statusCode).toBe(200);
    expect(ops.json().data.purchase.id).toBe(purchaseId);

    t.fake.fail(500, 2);
    const down = await returnPage(sessionId, asAdmin());
    expect(down.statusCode).toBe(200);
    expect(down.json().data.purchase.status).toBe('pending');
  });
});
