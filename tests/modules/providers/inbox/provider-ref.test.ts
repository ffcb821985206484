import { beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, asUser, buildTestApp, type TestApp } from '../../../helpers/app.ts';
import { chargeObject, stripeEvent } from '../../../helpers/fake-stripe.ts';

let t: TestApp;

/** Stores an event as the inbox does (the filter reads only what is stored). */
async function store(provider: 'stripe' | 'revenuecat', eventId: string, type: string, payload: object) {
  await t.pg.query(
    `insert into webhook_events (provider, event_id, type, payload, status, source)
     values ($1, $2, $3, $4, 'processed', $5)`,
    [provider, eventId, type, JSON.stringify(payload), eventId.startsWith('sync:') ? 'sync' : 'webhook'],
  );
}

const list = async (query: string, headers = asAdmin()) => {
  const res = await t.app.inject({ method: 'GET', url: `/api/v1/provider-events?${query}`, headers });
  return {
    status: res.statusCode,
    ids: (res.json().data?.items ?? []).map((e: { eventId: string }) => e.eventId),
  };
};

beforeAll(async () => {
  t = await buildTestApp();
  await store(
    'stripe',
    'evt_session_1',
    'checkout.session.completed',
    stripeEvent(
      'checkout.session.completed',
      { id: 'cs_test_1', object: 'checkout.session', payment_intent: 'pi_test_1', status: 'complete' },
      { id: 'evt_session_1' },
    ),
  );
  const charge = chargeObject({
    paymentIntent: 'pi_test_1',
    amount: 1000,
    amountRefunded: 1000,
    id: 'ch_test_1',
  });
  await store(
    'stripe',
    'evt_refund_1',
    'charge.refunded',
    stripeEvent('charge.refunded', { ...charge, receipt_number: '1234-5678' }, { id: 'evt_refund_1' }),
  );
  await store('stripe', 'evt_dispute_1', 'charge.dispute.created', {
    id: 'evt_dispute_1',
    type: 'charge.dispute.created',
    data: {
      object: { id: 'dp_test_1', object: 'dispute', charge: 'ch_test_1', payment_intent: 'pi_test_1' },
    },
  });
  await store('revenuecat', 'rc_evt_1', 'NON_RENEWING_PURCHASE', {
    api_version: '1.0',
    event: {
      id: 'rc_evt_1',
      type: 'NON_RENEWING_PURCHASE',
      app_user_id: 'u_1',
      transaction_id: 'GPA.3372-1111',
      original_transaction_id: '1000000999',
    },
  });
  await store('revenuecat', 'sync:2000000123', 'NON_RENEWING_PURCHASE', {
    event: { id: 'sync:2000000123', transaction_id: '2000000123', original_transaction_id: '2000000123' },
  });
  await store('stripe', 'evt_other', 'checkout.session.completed', {
    id: 'evt_other',
    data: { object: { id: 'cs_other', payment_intent: 'pi_other' } },
  });
});

describe('GET /api/v1/provider-events?providerRef=', () => {
  it.each([
    ['a PaymentIntent', 'pi_test_1', ['evt_dispute_1', 'evt_refund_1', 'evt_session_1']],
    ['a Checkout Session', 'cs_test_1', ['evt_session_1']],
    ['a charge id', 'ch_test_1', ['evt_dispute_1', 'evt_refund_1']],
    ['a receipt number', '1234-5678', ['evt_refund_1']],
    ['a Stripe event id', 'evt_refund_1', ['evt_refund_1']],
    ['a store transaction id', 'GPA.3372-1111', ['rc_evt_1']],
    ['an original transaction id', '1000000999', ['rc_evt_1']],
    ['a RevenueCat event id', 'rc_evt_1', ['rc_evt_1']],
    ['a synced transaction id', '2000000123', ['sync:2000000123']],
    ['nothing known', 'pi_unknown', []],
  ])('finds the events of %s, newest first', async (_label, ref, expected) => {
    const { status, ids } = await list(`providerRef=${encodeURIComponent(ref)}`);
    expect(status).toBe(200);
    expect(ids).toEqual(expected);
  });

  it('combines with the other filters', async () => {
    expect((await list('providerRef=pi_test_1&type=charge.refunded')).ids).toEqual(['evt_refund_1']);
    expect((await list('providerRef=pi_test_1&provider=revenuecat')).ids).toEqual([]);
  });

  it('is for admin and ops only; an empty ref is a 400', async () => {
    expect((await list('providerRef=pi_test_1', asUser('u_1'))).status).toBe(403);
    expect((await list('providerRef=')).status).toBe(400);
  });

  it('uses the index, not a scan', async () => {
    const client = await t.pg.connect();
    try {
      await client.query('set enable_seqscan = off');
      const { rows } = await client.query(
        `explain select seq from webhook_events where provider_event_refs(event_id, payload) @> array['pi_test_1']::text[]`,
      );
      expect(rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('webhook_events_refs');
    } finally {
      await client.query('reset enable_seqscan');
      client.release();
    }
  });
});
