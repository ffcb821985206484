import { beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, asUser, bearer, tokenFor, balanceOf } from '../../../helpers/app.ts';
import { chargeObject, sessionObject, stripeEvent } from '../../../helpers/fake-stripe.ts';
import {
  createRcPackage,
  deliver as deliverRc,
  purchaseEvent,
  RC_AUTH,
  rcState,
  refundEvent,
  storedEvent,
  unique,
} from '../../../helpers/revenuecat.ts';
import {
  buildStripeApp,
  createPackage,
  deliver as deliverStripe,
  eventRows,
  ledgerRows,
  type StripeTestApp,
  startCheckout,
} from '../stripe/stripe-helpers.ts';
import { expectError } from '../../../helpers/envelope.ts';

let t: StripeTestApp;

beforeAll(async () => {
  t = await buildStripeApp({ REVENUECAT_WEBHOOK_AUTH: RC_AUTH });
});

const asOps = () => bearer(tokenFor('ops_1', ['ops']));
const get = (url: string, headers = asAdmin()) => t.app.inject({ method: 'GET', url, headers });
const replay = (id: string, headers = asAdmin()) =>
  t.app.inject({ method: 'POST', url: `/api/v1/provider-events/${id}/replay`, headers });

/** The inbox id of a stored event, found through the list (by user). */
async function inboxId(eventId: string, userId: string) {
  const res = await get(`/api/v1/provider-events?userId=${userId}&limit=100`);
  const item = res.json().data.items.find((e: { eventId: string }) => e.eventId === eventId);
  if (!item) throw new Error(`event ${eventId} is not listed for ${userId}`);
  return item.id as string;
}

describe('the provider-event inbox for operators', () => {
  it('lists newest first with filters and pages, shows one with its payload; ops read, only admins replay', async () => {
    const product = unique('prod');
    await createRcPackage(t.app, [product], { credits: 5 });
    const user = unique('user');
    const bodies = [0, 1, 2].map(() => purchaseEvent(product, user, unique('tx')));
    for (const body of bodies) await deliverRc(t.app, body);

    const first = await get(`/api/v1/provider-events?userId=${user}&provider=revenuecat&limit=2`, asOps());
    expect(first.statusCode).toBe(200);
    const page1 = first.json().data;
    expect(page1.items.map((e: { eventId: string }) => e.eventId)).toEqual([
      bodies[2]!.event.id,
      bodies[1]!.event.id,
    ]);
    expect(page1.items[0]).toMatchObject({
      id: expect.stringMatching(/^pev_\d+$/),
      provider: 'revenuecat',
      type: 'NON_RENEWING_PURCHASE',
      status: 'processed',
      source: 'webhook',
      userId: user,
      purchaseId: expect.stringMatching(/^pur_/),
      attempts: 1,
    });
    expect(page1.items[0].payload).toBeUndefined();
    expect(page1.nextCursor).toEqual(expect.any(String));
    const second = await get(`/api/v1/provider-events?userId=${user}&limit=2&cursor=${page1.nextCursor}`);
    expect(second.json().data).toMatchObject({ nextCursor: null });
    expect(second.json().data.items.map((e: { eventId: string }) => e.eventId)).toEqual([
      bodies[0]!.event.id,
    ]);

    expect((await get(`/api/v1/provider-events?userId=${user}&status=parked`)).json().data.items).toEqual([]);
    expect((await get(`/api/v1/provider-events?userId=${user}&type=TEST`)).json().data.items).toEqual([]);
    expect((await get('/api/v1/provider-events?status=nonsense')).statusCode).toBe(400);
    expect((await get('/api/v1/provider-events?cursor=bad!')).statusCode).toBe(400);

    const one = await get(`/api/v1/provider-events/${page1.items[0].id}`, asOps());
    expect(one.statusCode).toBe(200);
    expect(one.json().data).toMatchObject({
      id: page1.items[0].id,
      payload: { event: { id: bodies[2]!.event.id } },
    });
    expect((await get('/api/v1/provider-events/pev_999999999')).statusCode).toBe(404);
    expect((await get('/api/v1/provider-events/evt_nope')).statusCode).toBe(404);

    expect((await get('/api/v1/provider-events', asUser(user))).statusCode).toBe(403);
    expect((await replay(page1.items[0].id, asOps())).statusCode).toBe(403);
    // A processed event: 409, nothing changes.
    const processed = await replay(page1.items[0].id);
    expectError(processed, 409, 'conflict');
    // Both errors come from the message catalogue, in the language asked for.
    const ru = { ...asAdmin(), 'accept-language': 'ru' };
    expect((await replay(page1.items[0].id, ru)).json().errors).toEqual([
      'Это событие провайдера уже обработано: повторять нечего',
    ]);
    expect((await get('/api/v1/provider-events/pev_999999999', ru)).json().errors).toEqual([
      'Событие провайдера не найдено',
    ]);
    expect((await balanceOf(t.app, user)).balance).toBe(15);
  });

  it('a purchase of a product mapped only afterwards: parked, replay leaves it parked, mapping grants it once', async () => {
    const product = unique('prod');
    const [user, tx] = [unique('user'), unique('tx')];
    const body = purchaseEvent(product, user, tx);
    expect((await deliverRc(t.app, body)).json().data.outcome).toBe('parked');
    const id = await inboxId(body.event.id as string, user);

    const still = await replay(id);
    expect(still.statusCode).toBe(200);
    expect(still.json().data).toMatchObject({ id, status: 'parked', attempts: 2 });
    expect(still.json().data.note).toMatch(/replayed; was parked/);

    // Saving the mapping grants it, in the same transaction as the mapping.
    const pkg = await createPackage(t.app, { name: 'Later', credits: 100, price: 100 });
    const mapped = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${pkg.id}`,
      headers: asAdmin(),
      payload: { revenuecatProductIds: [product] },
    });
    expect(mapped.statusCode).toBe(200);
    const state = await rcState(t.pg, user, tx);
    expect(state.balance).toBe(100);
    expect(state.purchases).toEqual([expect.objectContaining({ package_id: pkg.id, status: 'completed' })]);
    expect(await storedEvent(t.pg, body.event.id as string)).toMatchObject({ status: 'processed' });
    expect((await storedEvent(t.pg, body.event.id as string)).note).toMatch(/after its product was mapped/);
    expect((await replay(id)).statusCode).toBe(409);
    // A redelivery and a re-save of the mapping grant nothing more.
    await deliverRc(t.app, purchaseEvent(product, user, tx));
    await t.app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${pkg.id}`,
      headers: asAdmin(),
      payload: { revenuecatProductIds: [product] },
    });
    expect((await rcState(t.pg, user, tx)).entries).toHaveLength(1);
  });

  it('a redelivery of a granted purchase whose product was unmapped since is a repeat, not parked', async () => {
    const product = unique('prod');
    const pkg = await createRcPackage(t.app, [product], { credits: 4 });
    const [user, tx] = [unique('user'), unique('tx')];
    await deliverRc(t.app, purchaseEvent(product, user, tx));
    const unmap = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${pkg.id}`,
      headers: asAdmin(),
      payload: { revenuecatProductIds: [] },
    });
    expect(unmap.statusCode).toBe(200);
    const again = await deliverRc(t.app, purchaseEvent(product, user, tx));
    expect(again.json().data).toMatchObject({
      outcome: 'ignored',
      note: `transaction ${tx} was already granted`,
    });
    expect((await rcState(t.pg, user, tx)).balance).toBe(4);
  });

  it('concurrent replays of one event apply it once: one 200 processed, the rest 409', async () => {
    const product = unique('prod');
    const [user, tx] = [unique('user'), unique('tx')];
    const body = purchaseEvent(product, user, tx);
    expect((await deliverRc(t.app, body)).json().data.outcome).toBe('parked');
    // Mapped behind the service's back (no automatic wake-up): only a replay can grant it now.
    const pkg = await createPackage(t.app, { name: 'Quiet', credits: 11, price: 100 });
    await t.pg.query('insert into package_revenuecat_products (product_id, package_id) values ($1, $2)', [
      product,
      pkg.id,
    ]);
    const id = await inboxId(body.event.id as string, user);
    const responses = await Promise.all(Array.from({ length: 6 }, () => replay(id)));
    expect(responses.map((r) => r.statusCode).sort()).toEqual([200, 409, 409, 409, 409, 409]);
    const ok = responses.find((r) => r.statusCode === 200)!;
    expect(ok.json().data).toMatchObject({
      id,
      status: 'processed',
      purchaseId: expect.stringMatching(/^pur_/),
    });
    const state = await rcState(t.pg, user, tx);
    expect(state.balance).toBe(11);
    expect(state.entries).toHaveLength(1);
  });

  it('a purchase racing the mapping of its product is granted exactly once, never left parked', async () => {
    for (let round = 0; round < 6; round++) {
      const product = unique('prod');
      const [user, tx] = [unique('user'), unique('tx')];
      const [res] = await Promise.all([
        t.app.inject({
          method: 'POST',
          url: '/api/v1/credit-packages',
          headers: asAdmin(),
          payload: {
            name: 'Racing',
            credits: 9,
            price: 100,
            currency: 'usd',
            revenuecatProductIds: [product],
          },
        }),
        deliverRc(t.app, purchaseEvent(product, user, tx)),
        deliverRc(t.app, purchaseEvent(product, user, tx)),
      ]);
      expect(res!.statusCode).toBe(201);
      const state = await rcState(t.pg, user, tx);
      expect(state.balance).toBe(9);
      expect(state.entries).toHaveLength(1);
      expect(state.events.filter((e) => e.status === 'parked')).toEqual([]);
    }
  });

  it('replays a parked, ignored or failed event with its new outcome; a handler failure is stored as failed', async () => {
    // An event stored with a payload its handler cannot read (as a bug would leave one).
    await t.pg.query(
      `insert into webhook_events (provider, event_id, type, payload, status, note, user_id)
       values ('stripe', 'evt_broken', 'charge.refunded', '{"id":"evt_broken","type":"charge.refunded"}', 'failed', 'x', 'broken_user')`,
    );
    const id = await inboxId('evt_broken', 'broken_user');
    const res = await replay(id);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ id, status: 'failed', attempts: 2 });
    expect(res.json().data.note).toMatch(/^handler failed \(validation_failed\)/);

    // An ignored event (the same store transaction under a second event id) replays to ignored: no second grant.
    const product = unique('prod');
    await createRcPackage(t.app, [product], { credits: 3 });
    const [user, tx] = [unique('user'), unique('tx')];
    await deliverRc(t.app, purchaseEvent(product, user, tx));
    const repeat = purchaseEvent(product, user, tx);
    expect((await deliverRc(t.app, repeat)).json().data.outcome).toBe('ignored');
    const again = await replay(await inboxId(repeat.event.id as string, user));
    expect(again.json().data).toMatchObject({ status: 'ignored' });
    expect((await rcState(t.pg, user, tx)).entries).toHaveLength(1);
  });
});

describe('the two gaps', () => {
  it('a RevenueCat REFUND_REVERSED that arrives before its refund waits for it, then grants back', async () => {
    const product = unique('prod');
    await createRcPackage(t.app, [product], { credits: 30 });
    const [user, tx] = [unique('user'), unique('tx')];
    await deliverRc(t.app, purchaseEvent(product, user, tx));
    const reversal = refundEvent(product, tx, { type: 'REFUND_REVERSED', cancel_reason: null });
    const early = await deliverRc(t.app, reversal);
    expect(early.json().data).toMatchObject({ outcome: 'parked' });
    expect((await storedEvent(t.pg, reversal.event.id as string)).note).toMatch(/waiting for the refund/);
    expect((await balanceOf(t.app, user)).balance).toBe(30);

    expect((await deliverRc(t.app, refundEvent(product, tx))).json().data.outcome).toBe('processed');
    const state = await rcState(t.pg, user, tx);
    expect(state.entries.map((e) => [e.type, e.amount])).toEqual([
      ['grant', 30],
      ['reversal', -30],
      ['grant', 30],
    ]);
    expect(state.balance).toBe(30);
    expect(state.purchases[0]).toMatchObject({ status: 'completed', credits_reversed: 0 });
    expect(await storedEvent(t.pg, reversal.event.id as string)).toMatchObject({ status: 'processed' });

    // The same race, concurrently, several times: the reversal is never lost nor applied twice.
    for (let round = 0; round < 5; round++) {
      const [u, x] = [unique('user'), unique('tx')];
      await deliverRc(t.app, purchaseEvent(product, u, x));
      const responses = await Promise.all([
        deliverRc(t.app, refundEvent(product, x, { type: 'REFUND_REVERSED' })),
        deliverRc(t.app, refundEvent(product, x)),
      ]);
      expect(responses.map((r) => r.statusCode)).toEqual([200, 200]);
      const s = await rcState(t.pg, u, x);
      expect(s.entries.map((e) => e.amount)).toEqual([30, -30, 30]);
      expect(s.events.filter((e) => e.status === 'parked')).toEqual([]);
    }
  });

  it('a Stripe refund parked on a purchase that then fails is settled, not parked for ever', async () => {
    const pkg = await createPackage(t.app, { name: 'Ten', credits: 10, price: 1000 });
    const { purchaseId, session } = await startCheckout(t, 'gap_user', pkg.id);
    const unpaid = sessionObject(session, { payment_status: 'unpaid', payment_intent: 'pi_test_gap' });
    const refund = stripeEvent(
      'charge.refunded',
      chargeObject({
        paymentIntent: 'pi_test_gap',
        amount: 1000,
        amountRefunded: 1000,
        metadata: { purchaseId },
      }),
    );
    expect((await deliverStripe(t.app, refund)).json().data.outcome).toBe('parked');
    const failed = await deliverStripe(t.app, stripeEvent('checkout.session.async_payment_failed', unpaid));
    expect(failed.json().data.outcome).toBe('processed');
    const [row] = await eventRows(t, [refund.id as string]);
    expect(row).toMatchObject({ status: 'ignored', purchase_id: purchaseId });
    expect(row.note).toMatch(/purchase is failed: nothing was granted/);
    expect((await get(`/api/v1/provider-events?status=parked&userId=gap_user`)).json().data.items).toEqual(
      [],
    );

    // Stripe's word that it was paid after all still wins: the grant applies the refund it kept.
    const paid = await deliverStripe(
      t.app,
      stripeEvent('checkout.session.async_payment_succeeded', { ...unpaid, payment_status: 'paid' }),
    );
    expect(paid.json().data.note).toContain('applied 1 earlier event(s)');
    expect((await ledgerRows(t, 'gap_user')).map((e) => e.amount)).toEqual([10, -10]);
    expect((await balanceOf(t.app, 'gap_user')).balance).toBe(0);
  });
});
