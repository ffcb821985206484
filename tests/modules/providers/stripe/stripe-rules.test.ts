import { describe, expect, it } from 'vitest';
import {
  chargeDecision,
  chargeGate,
  chargeMatches,
  parseStripeEvent,
  proportionalCeil,
  sessionDecision,
  sessionFacts,
  sessionMatches,
  stripeEventAction,
} from '../../../../src/modules/providers/stripe/stripe-rules.ts';
import { purchase } from '../purchase-fixture.ts';

/** Stripe's rules without Postgres: event -> action, and action x purchase -> what the lifecycle applies. */

const session = (fields: Record<string, unknown> = {}) => ({
  id: 'cs_1',
  object: 'checkout.session',
  client_reference_id: 'pur_1',
  metadata: { purchaseId: 'pur_1' },
  payment_intent: 'pi_1',
  payment_status: 'paid',
  ...fields,
});
const charge = (fields: Record<string, unknown> = {}) => ({
  id: 'ch_1',
  object: 'charge',
  payment_intent: 'pi_1',
  amount: 1000,
  amount_refunded: 0,
  ...fields,
});
const dispute = (fields: Record<string, unknown> = {}) => ({
  id: 'dp_1',
  object: 'dispute',
  charge: 'ch_1',
  payment_intent: 'pi_1',
  reason: 'fraudulent',
  status: 'needs_response',
  ...fields,
});
const granted = purchase({
  status: 'completed',
  provider_ref: 'cs_1',
  stripe_payment_intent_id: 'pi_1',
  completed_at: new Date('2026-01-02T00:00:00Z'),
});

describe('parseStripeEvent', () => {
  it('reads id, type, data.object and created; refuses anything else with a 400', () => {
    expect(
      parseStripeEvent({ id: 'evt_1', type: 'charge.refunded', created: 5, data: { object: { id: 'ch' } } }),
    ).toEqual({ id: 'evt_1', type: 'charge.refunded', created: 5, object: { id: 'ch' } });
    expect(parseStripeEvent({ id: 'evt_1', type: 't', data: { object: {} } }).created).toBe(0);
    for (const bad of [
      null,
      [],
      'x',
      { id: 'evt_1', type: 't' },
      { id: '', type: 't', data: { object: {} } },
    ]) {
      expect(() => parseStripeEvent(bad)).toThrow(expect.objectContaining({ code: 'validation_failed' }));
    }
  });
});

describe('stripeEventAction: each event type of section 5', () => {
  const step = (type: string, object: Record<string, unknown>) => {
    const a = stripeEventAction(type, object);
    return a.on === 'none' ? a.note : `${a.on}:${a.step}`;
  };

  it('maps Checkout Session events: paid grants, unpaid waits, async results, expiry', () => {
    expect(step('checkout.session.completed', session())).toBe('session:grant');
    expect(step('checkout.session.completed', session({ payment_status: 'no_payment_required' }))).toBe(
      'session:grant',
    );
    expect(step('checkout.session.completed', session({ payment_status: 'unpaid' }))).toBe(
      'session:awaitPayment',
    );
    expect(step('checkout.session.completed', session({ payment_status: undefined }))).toBe(
      'session:awaitPayment',
    );
    expect(step('checkout.session.async_payment_succeeded', session({ payment_status: 'paid' }))).toBe(
      'session:grant',
    );
    expect(step('checkout.session.async_payment_failed', session({ payment_status: 'unpaid' }))).toBe(
      'session:markFailed',
    );
    expect(step('checkout.session.expired', session({ payment_status: 'unpaid' }))).toBe(
      'session:markExpired',
    );
  });

  it('maps charge events: refund, dispute created, dispute closed; anything else is not handled', () => {
    expect(step('charge.refunded', charge())).toBe('charge:refund');
    expect(step('charge.dispute.created', dispute())).toBe('charge:disputeOpened');
    expect(step('charge.dispute.closed', dispute({ status: 'won' }))).toBe('charge:disputeClosed');
    expect(step('payment_intent.succeeded', {})).toBe('event type payment_intent.succeeded is not handled');
    expect(step('charge.dispute.updated', dispute())).toBe(
      'event type charge.dispute.updated is not handled',
    );
  });

  it('reads the purchase from metadata, then client_reference_id; the PaymentIntent as an id or expanded', () => {
    expect(sessionFacts(session())).toEqual({
      sessionId: 'cs_1',
      paymentIntentId: 'pi_1',
      purchaseId: 'pur_1',
      paymentStatus: 'paid',
    });
    expect(sessionFacts(session({ metadata: {}, client_reference_id: 'pur_2' })).purchaseId).toBe('pur_2');
    expect(sessionFacts(session({ payment_intent: { id: 'pi_9' } })).paymentIntentId).toBe('pi_9');
    const a = stripeEventAction('charge.refunded', charge({ metadata: { purchaseId: 'pur_3' } }));
    expect(a).toMatchObject({ on: 'charge', charge: { paymentIntentId: 'pi_1', purchaseId: 'pur_3' } });
  });
});

describe('which purchase an event belongs to', () => {
  it('a session matches a Stripe purchase with no other session recorded', () => {
    const s = sessionFacts(session());
    expect(sessionMatches(purchase(), s)).toBe(true);
    expect(sessionMatches(purchase({ provider_ref: 'cs_1' }), s)).toBe(true);
    expect(sessionMatches(purchase({ provider_ref: 'cs_other' }), s)).toBe(false);
    expect(sessionMatches(purchase({ provider: 'revenuecat' }), s)).toBe(false);
    expect(sessionMatches(undefined, s)).toBe(false);
  });

  it('a charge matches a Stripe purchase with no other PaymentIntent recorded', () => {
    expect(chargeMatches(purchase(), { paymentIntentId: 'pi_1' })).toBe(true);
    expect(chargeMatches(purchase({ stripe_payment_intent_id: 'pi_1' }), { paymentIntentId: 'pi_1' })).toBe(
      true,
    );
    expect(chargeMatches(purchase({ stripe_payment_intent_id: 'pi_2' }), { paymentIntentId: 'pi_1' })).toBe(
      false,
    );
    expect(chargeMatches(purchase({ provider: 'dev' }), {})).toBe(false);
  });
});

describe('sessionDecision', () => {
  const facts = sessionFacts(session());

  it('grants a pending purchase once per purchase, recording the session and PaymentIntent', () => {
    const d = sessionDecision(purchase(), 'grant', facts, 'evt_1');
    expect(d).toEqual({
      action: {
        type: 'grant',
        refs: { provider_ref: 'cs_1', stripe_payment_intent_id: 'pi_1' },
        entry: {
          key: 'stripe:grant:pur_1',
          reason: 'Stripe Checkout purchase',
          metadata: { packageId: 'pkg_1', sessionId: 'cs_1', paymentIntentId: 'pi_1', eventId: 'evt_1' },
        },
      },
      wake: 'grant',
    });
    // The return page reads the session without an event.
    const read = sessionDecision(purchase(), 'grant', facts, null);
    expect(read.action).toMatchObject({ entry: { metadata: { fulfilledBy: 'checkout session read' } } });
  });

  it('records what the buyer paid: amount_total and currency, when the session has them', () => {
    const paid = sessionFacts(session({ amount_total: 750, currency: 'EUR' }));
    expect(paid.paid).toEqual({ price: 750, currency: 'eur' });
    expect(sessionDecision(purchase(), 'grant', paid, 'evt_1').action).toMatchObject({
      type: 'grant',
      refs: { provider_ref: 'cs_1', stripe_payment_intent_id: 'pi_1', price: 750, currency: 'eur' },
    });
    expect(
      sessionDecision(purchase(), 'grant', sessionFacts(session({ amount_total: 0, currency: 'usd' })), 'e'),
    ).toMatchObject({ action: { refs: { price: 0, currency: 'usd' } } });
    for (const none of [
      {},
      { amount_total: null, currency: 'usd' },
      { amount_total: 750 },
      { amount_total: -1, currency: 'usd' },
    ]) {
      expect(sessionFacts(session(none)).paid, JSON.stringify(none)).toBeUndefined();
    }
  });

  it('grants a failed or expired purchase that Stripe says was paid after all', () => {
    for (const status of ['failed', 'expired'] as const) {
      expect(sessionDecision(purchase({ status }), 'grant', facts, 'evt_1').action.type).toBe('grant');
    }
  });

  it('a granted purchase is not granted again: only its references are kept', () => {
    for (const status of ['completed', 'partially_refunded', 'refunded', 'disputed'] as const) {
      const d = sessionDecision({ ...granted, status }, 'grant', facts, 'evt_2');
      expect(d).toEqual({ action: { type: 'remember', refs: {} }, note: 'already granted' });
    }
  });

  it('an unpaid session waits for async_payment_succeeded; failure and expiry close the purchase', () => {
    const unpaid = sessionFacts(session({ payment_status: 'unpaid' }));
    expect(sessionDecision(purchase(), 'awaitPayment', unpaid, 'evt_1')).toEqual({
      action: { type: 'remember', refs: { provider_ref: 'cs_1', stripe_payment_intent_id: 'pi_1' } },
      note: 'payment_status unpaid: waiting for checkout.session.async_payment_succeeded',
    });
    expect(sessionDecision(purchase(), 'markFailed', unpaid, 'evt_1')).toMatchObject({
      action: { type: 'markFailed' },
      wake: 'close',
    });
    expect(sessionDecision(purchase(), 'markExpired', unpaid, 'evt_1')).toMatchObject({
      action: { type: 'markExpired' },
      wake: 'close',
    });
  });
});

describe('chargeGate', () => {
  it('parks a charge event on a pending purchase, ignores it on one that was never granted', () => {
    expect(chargeGate(purchase())).toEqual({
      status: 'parked',
      note: 'purchase is pending: parked until it is granted',
      waitingFor: 'purchase:pur_1',
      purchaseId: 'pur_1',
      userId: 'user_1',
    });
    for (const status of ['failed', 'expired'] as const) {
      expect(chargeGate(purchase({ status }))).toMatchObject({
        status: 'ignored',
        waitingFor: 'purchase:pur_1',
      });
    }
    expect(chargeGate(granted)).toBeUndefined();
  });
});

describe('refunds: in proportion to amount_refunded / amount, cumulative, rounded up', () => {
  const refund = (amount_refunded: number, fields: Record<string, unknown> = {}) =>
    chargeDecision(granted, 'refund', charge({ amount_refunded, ...fields }));

  it('each increment targets the cumulative share, keyed by that target', () => {
    expect(refund(333)).toEqual({
      action: {
        type: 'clawBackTo',
        targetCredits: 34,
        full: false,
        entry: {
          key: 'stripe:refund:pur_1:34',
          reason: 'Stripe refund',
          metadata: { chargeId: 'ch_1', amount: 1000, amountRefunded: 333, targetCredits: 34 },
        },
      },
    });
    expect(refund(500)).toMatchObject({ action: { targetCredits: 50, full: false } });
    expect(refund(1000)).toMatchObject({ action: { targetCredits: 100, full: true } });
    // More than the charge (never sent by Stripe) is the whole charge.
    expect(refund(5000)).toMatchObject({ action: { targetCredits: 100, full: true } });
  });

  it('a charge without amounts does nothing', () => {
    expect(refund(100, { amount: 0 })).toEqual({
      note: 'the charge has no amount or amount_refunded: nothing to do',
    });
    expect(chargeDecision(granted, 'refund', { id: 'ch_1', amount: 1000 })).toHaveProperty('note');
  });

  it('rounds up exactly, even past 2^53 intermediate products', () => {
    expect(proportionalCeil(100, 1, 1000)).toBe(1);
    expect(proportionalCeil(3, 1, 3)).toBe(1);
    expect(proportionalCeil(2 ** 40, 2 ** 40 - 1, 2 ** 40)).toBe(2 ** 40 - 1);
  });
});

describe('disputes: one per charge, closed as won or lost', () => {
  it('a dispute opened claws back the rest, once per dispute', () => {
    expect(chargeDecision(granted, 'disputeOpened', dispute())).toEqual({
      action: {
        type: 'disputeOpened',
        disputeId: 'dp_1',
        entry: {
          key: 'stripe:dispute:pur_1:dp_1',
          reason: 'Stripe dispute opened',
          metadata: { disputeId: 'dp_1', chargeId: 'ch_1', disputeReason: 'fraudulent' },
        },
      },
    });
  });

  it('a dispute won (or an inquiry closed) grants back what the dispute took', () => {
    const open = { ...granted, status: 'disputed' as const, credits_reversed: 100, credits_disputed: 100 };
    for (const status of ['won', 'warning_closed']) {
      expect(chargeDecision(open, 'disputeClosed', dispute({ status }))).toEqual({
        action: {
          type: 'disputeWon',
          disputeId: 'dp_1',
          openedKey: 'stripe:dispute:pur_1:dp_1',
          entry: {
            key: 'stripe:dispute-won:dp_1',
            reason: 'Stripe dispute won',
            metadata: { disputeId: 'dp_1', chargeId: 'ch_1' },
          },
        },
        notePrefix: `dispute dp_1 ${status}: `,
      });
    }
    // Closed without an opening seen here: the closing is still recorded (and reported), nothing to give back.
    expect(chargeDecision(granted, 'disputeClosed', dispute({ status: 'won' }))).toMatchObject({
      action: { type: 'disputeWon', openedKey: 'stripe:dispute:pur_1:dp_1' },
    });
  });

  it('a dispute lost refunds the purchase; its clawback key is the opening one (taken now if that was missed)', () => {
    const open = { ...granted, status: 'disputed' as const, credits_reversed: 100, credits_disputed: 100 };
    const lost = {
      action: {
        type: 'disputeLost',
        disputeId: 'dp_1',
        entry: {
          key: 'stripe:dispute:pur_1:dp_1',
          reason: 'Stripe dispute lost',
          metadata: { disputeId: 'dp_1', chargeId: 'ch_1', disputeReason: 'fraudulent' },
        },
      },
      notePrefix: 'dispute dp_1 lost: ',
    };
    expect(chargeDecision(open, 'disputeClosed', dispute({ status: 'lost' }))).toEqual(lost);
    expect(chargeDecision(granted, 'disputeClosed', dispute({ status: 'lost' }))).toEqual(lost);
  });

  it('a dispute is closed once: a second closing, or an opening after the closing, changes nothing', () => {
    for (const outcome of ['won', 'lost'] as const) {
      const closed = { ...granted, dispute_outcome: outcome };
      const note = `the dispute of this purchase was closed already (${outcome})`;
      expect(chargeDecision(closed, 'disputeClosed', dispute({ status: 'won' }))).toEqual({ note });
      expect(chargeDecision(closed, 'disputeClosed', dispute({ status: 'lost' }))).toEqual({ note });
      expect(chargeDecision(closed, 'disputeOpened', dispute())).toEqual({ note });
    }
    expect(chargeDecision(granted, 'disputeClosed', dispute({ status: 'under_review' }))).toEqual({
      note: 'dispute closed as under_review: nothing to do',
    });
  });
});
