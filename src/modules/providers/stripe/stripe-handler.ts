import type { Executor, PurchaseRow } from '../../../db/database.ts';
import {
  findPurchase,
  findPurchaseByPaymentIntent,
  findPurchaseByProviderRef,
  type PurchaseLifecycle,
} from '../../purchases/index.ts';
import type { InboxContext, Outcome, ProviderHandler } from '../inbox/provider-inbox.service.ts';
import { lockPaymentIntent } from './stripe.repository.ts';
import {
  type ChargeFacts,
  chargeDecision,
  chargeGate,
  chargeMatches,
  parseStripeEvent,
  paymentIntentKey,
  purchaseKey,
  type SessionFacts,
  sessionDecision,
  sessionMatches,
  type StripeEvent,
  type StripeEventAction,
  stripeEventAction,
} from './stripe-rules.ts';

type Obj = Record<string, unknown>;

/** The purchase a Checkout Session belongs to, locked: by metadata, client_reference_id, then session id. */
async function purchaseForSession(trx: Executor, s: SessionFacts): Promise<PurchaseRow | undefined> {
  let purchase = s.purchaseId ? await findPurchase(trx, s.purchaseId, true) : undefined;
  if (!purchase && s.sessionId) purchase = await findPurchaseByProviderRef(trx, 'stripe', s.sessionId, true);
  return sessionMatches(purchase, s) ? purchase : undefined;
}

/** The purchase a charge or dispute belongs to, locked: by PaymentIntent, else by `metadata.purchaseId`. */
async function purchaseForCharge(trx: Executor, c: ChargeFacts): Promise<PurchaseRow | undefined> {
  const byPaymentIntent = c.paymentIntentId
    ? await findPurchaseByPaymentIntent(trx, c.paymentIntentId, true)
    : undefined;
  if (byPaymentIntent) return byPaymentIntent.provider === 'stripe' ? byPaymentIntent : undefined;
  const byMetadata = c.purchaseId ? await findPurchase(trx, c.purchaseId, true) : undefined;
  return chargeMatches(byMetadata, c) ? byMetadata : undefined;
}

/**
 * Runs Stripe's rules (stripe-rules.ts) inside the inbox's transaction: takes the locks, finds the purchase,
 * and has the purchase lifecycle apply what the rules decided. Everything for one PaymentIntent is serialized
 * by its advisory lock, then by the purchase's row lock. Credits always come from the purchase's snapshot,
 * never from the payload.
 */
export function createStripeHandler(lifecycle: PurchaseLifecycle) {
  async function onSession(
    ctx: InboxContext,
    a: Extract<StripeEventAction, { on: 'session' }>,
    eventId: string | null,
  ): Promise<Outcome> {
    const { trx } = ctx;
    if (a.session.paymentIntentId) await lockPaymentIntent(trx, a.session.paymentIntentId);
    const p = await purchaseForSession(trx, a.session);
    if (!p) return { status: 'ignored', note: 'no purchase matches this Checkout Session' };
    const done = { purchaseId: p.id, userId: p.user_id };
    const decision = sessionDecision(p, a.step, a.session, eventId);
    const applied = await lifecycle.apply(trx, p, decision.action);
    let note = decision.note ?? applied.note;
    if (decision.wake === 'grant') {
      // What arrived before the grant, in the order received: events parked on this purchase, and charge
      // events that named its PaymentIntent before any purchase was known by it.
      const keys = [purchaseKey(p.id)];
      const paymentIntentId = applied.purchase.stripe_payment_intent_id;
      if (paymentIntentId) keys.push(paymentIntentKey(paymentIntentId));
      const woken = await ctx.wake(keys, 'after the grant');
      if (woken > 0) note += `; applied ${woken} earlier event(s)`;
    } else if (decision.wake === 'close' && applied.changed) {
      // Refunds parked on it will never find a grant to take back: they are settled (ignored), and kept for
      // the grant should Stripe report the payment after all.
      await ctx.wake([purchaseKey(p.id)], `the purchase is ${applied.purchase.status}`);
    }
    return { status: 'processed', note, ...done };
  }

  async function onCharge(
    ctx: InboxContext,
    a: Extract<StripeEventAction, { on: 'charge' }>,
  ): Promise<Outcome> {
    const { trx } = ctx;
    const { paymentIntentId } = a.charge;
    if (paymentIntentId) await lockPaymentIntent(trx, paymentIntentId);
    const p = await purchaseForCharge(trx, a.charge);
    if (!p) {
      // Kept: if a purchase is granted later with this PaymentIntent, the grant applies it.
      return {
        status: 'ignored',
        note: 'no purchase matches this charge (yet)',
        waitingFor: paymentIntentId ? paymentIntentKey(paymentIntentId) : null,
      };
    }
    const gate = chargeGate(p);
    if (gate) return gate;
    const done = { purchaseId: p.id, userId: p.user_id };
    const decision = chargeDecision(p, a.step, a.object);
    if (!('action' in decision)) return { status: 'processed', note: decision.note, ...done };
    const applied = await lifecycle.apply(trx, p, decision.action);
    return { status: 'processed', note: `${decision.notePrefix ?? ''}${applied.note}`, ...done };
  }

  /** A Checkout Session event, or the session as read from Stripe (the return page; `eventId` null). */
  function sessionEvent(ctx: InboxContext, type: string, session: Obj, eventId: string | null) {
    const a = stripeEventAction(type, session);
    if (a.on !== 'session')
      return Promise.resolve<Outcome>({ status: 'ignored', note: `not a session event` });
    return onSession(ctx, a, eventId);
  }

  const handler: ProviderHandler<StripeEvent> & { sessionEvent: typeof sessionEvent } = {
    // Woken events run in the order received (the inbox's default).
    parse: parseStripeEvent,
    async handle(ctx, event) {
      const a = stripeEventAction(event.type, event.object);
      if (a.on === 'session') return onSession(ctx, a, event.id);
      if (a.on === 'charge') return onCharge(ctx, a);
      return { status: 'ignored', note: a.note };
    },
    sessionEvent,
  };
  return handler;
}

export type StripeHandler = ReturnType<typeof createStripeHandler>;
