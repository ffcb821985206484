import type { Config } from '../../../config.ts';
import type { Executor, PurchaseRow, PurchaseStatus } from '../../../db/database.ts';
import {
  findPurchase,
  findPurchaseByPaymentIntent,
  findPurchaseByProviderRef,
  isGranted,
  type PurchaseChanges,
  type PurchaseLifecycle,
} from '../../purchases/index.ts';
import { lockPaymentIntent, STRIPE_CHARGE_EVENT_TYPES } from './stripe.repository.ts';
import { AppError, unavailable } from '../../../errors.ts';
import { msg } from '../../../messages.ts';
import type {
  InboxContext,
  Outcome,
  ProviderHandler,
  ProviderInbox,
} from '../inbox/provider-inbox.service.ts';
import { constructStripeEvent } from './stripe.client.ts';
import { storableProviderEvent } from '../../../lib/text.ts';

/** Stripe's signature tolerance: a signed timestamp older or newer than this is refused. */
const TOLERANCE_SECONDS = 300;

export type WebhookOutcome = 'processed' | 'ignored' | 'parked' | 'failed' | 'duplicate';

export interface StripeWebhookResult {
  received: true;
  eventId: string;
  type: string;
  outcome: WebhookOutcome;
  duplicate: boolean;
  purchaseId: string | null;
  note: string | null;
}

type Obj = Record<string, unknown>;

/** A Stripe event as the handler reads it. */
export interface StripeEvent {
  id: string;
  type: string;
  object: Obj;
  created: number;
}

/** The Checkout Session and charge event types this service acts on (reconciliation reads these). */
export const STRIPE_EVENT_TYPES = [
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'checkout.session.expired',
  ...STRIPE_CHARGE_EVENT_TYPES,
];

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const int = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
/** An id field that Stripe sends as a string, or as the object when expanded. */
const idOf = (v: unknown): string | undefined =>
  str(v) ?? (v && typeof v === 'object' ? str((v as Obj).id) : undefined);
const metadataOf = (o: Obj, key: string): string | undefined =>
  o.metadata && typeof o.metadata === 'object' ? str((o.metadata as Obj)[key]) : undefined;

/** ceil(credits × refunded / amount) without leaving exact integer arithmetic. */
function proportionalCeil(credits: number, refunded: number, amount: number): number {
  const n = BigInt(credits) * BigInt(refunded);
  const d = BigInt(amount);
  return Number((n + d - 1n) / d);
}

/** Waiting keys (010_provider_event_inbox.sql): the purchase's grant, and a PaymentIntent no purchase names yet. */
const purchaseKey = (purchaseId: string) => `purchase:${purchaseId}`;
const paymentIntentKey = (paymentIntentId: string) => `stripe:payment_intent:${paymentIntentId}`;

/** Parses a stored or verified Stripe event; throws 400 when it is not one. */
export function parseStripeEvent(payload: unknown): StripeEvent {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new AppError('validation_failed', msg('stripe.event_invalid'));
  }
  const e = payload as {
    id?: unknown;
    type?: unknown;
    created?: unknown;
    data?: { object?: unknown };
  };
  const id = str(e.id);
  const type = str(e.type);
  const object = e.data?.object;
  if (!id || !type || !object || typeof object !== 'object') {
    throw new AppError('validation_failed', msg('stripe.event_invalid'));
  }
  return { id, type, object: object as Obj, created: int(e.created) ?? 0 };
}

/**
 * Stripe's rules, as plain functions over a parsed event, run by the inbox inside its transaction. Everything
 * for one PaymentIntent is serialized by its advisory lock, then by the purchase's row lock. Credits always
 * come from the purchase's snapshot, never from the payload.
 */
export function createStripeHandler(lifecycle: PurchaseLifecycle) {
  /** The purchase a Checkout Session belongs to, locked: by metadata, client_reference_id, then session id. */
  async function purchaseForSession(trx: Executor, session: Obj): Promise<PurchaseRow | undefined> {
    const sessionId = str(session.id);
    const id = metadataOf(session, 'purchaseId') ?? str(session.client_reference_id);
    let purchase = id ? await findPurchase(trx, id, true) : undefined;
    if (!purchase && sessionId) purchase = await findPurchaseByProviderRef(trx, 'stripe', sessionId, true);
    if (purchase?.provider !== 'stripe') return undefined;
    // A session that is not the one this purchase opened (another integration on the same account).
    if (purchase.provider_ref && sessionId && purchase.provider_ref !== sessionId) return undefined;
    return purchase;
  }

  /** The purchase a charge or dispute belongs to, locked: by PaymentIntent, else by `metadata.purchaseId`. */
  async function purchaseForCharge(trx: Executor, object: Obj): Promise<PurchaseRow | undefined> {
    const paymentIntentId = idOf(object.payment_intent);
    let purchase = paymentIntentId
      ? await findPurchaseByPaymentIntent(trx, paymentIntentId, true)
      : undefined;
    if (!purchase) {
      const id = metadataOf(object, 'purchaseId');
      if (id) purchase = await findPurchase(trx, id, true);
      if (
        purchase?.stripe_payment_intent_id &&
        paymentIntentId &&
        purchase.stripe_payment_intent_id !== paymentIntentId
      ) {
        return undefined;
      }
    }
    return purchase?.provider === 'stripe' ? purchase : undefined;
  }

  /** Keeps the session id and PaymentIntent id on the purchase (refunds and disputes find it by the latter). */
  function references(purchase: PurchaseRow, session: Obj): PurchaseChanges {
    const changes: PurchaseChanges = {};
    const sessionId = str(session.id);
    const paymentIntentId = idOf(session.payment_intent);
    if (!purchase.provider_ref && sessionId) changes.provider_ref = sessionId;
    if (!purchase.stripe_payment_intent_id && paymentIntentId)
      changes.stripe_payment_intent_id = paymentIntentId;
    return changes;
  }

  async function refund(trx: Executor, p: PurchaseRow, charge: Obj) {
    const amount = int(charge.amount);
    const amountRefunded = int(charge.amount_refunded);
    if (!amount || amount <= 0 || amountRefunded === undefined) {
      return { purchase: p, note: 'the charge has no amount or amount_refunded: nothing to do' };
    }
    const refunded = Math.min(Math.max(amountRefunded, 0), amount);
    const target = proportionalCeil(p.credits, refunded, amount);
    return lifecycle.refundTo(trx, p, {
      targetCredits: target,
      full: refunded >= amount,
      // Per cumulative target: a second delivery of the same refund state takes nothing twice.
      key: `stripe:refund:${p.id}:${target}`,
      reason: 'Stripe refund',
      metadata: { chargeId: str(charge.id), amount, amountRefunded: refunded, targetCredits: target },
    });
  }

  async function disputeOpened(trx: Executor, p: PurchaseRow, dispute: Obj) {
    const disputeId = str(dispute.id) ?? 'unknown';
    return lifecycle.disputeOpened(trx, p, {
      disputeId,
      key: `stripe:dispute:${p.id}:${disputeId}`,
      reason: 'Stripe dispute opened',
      metadata: { disputeId, chargeId: idOf(dispute.charge), disputeReason: str(dispute.reason) },
    });
  }

  async function disputeClosed(trx: Executor, p: PurchaseRow, dispute: Obj) {
    const outcome = str(dispute.status) ?? 'unknown';
    // `warning_closed`: an inquiry that never became a chargeback, so no money left the account either.
    if (outcome !== 'won' && outcome !== 'warning_closed') {
      return { purchase: p, note: `dispute closed as ${outcome}: the credits stay reversed` };
    }
    if (p.status !== 'disputed') return { purchase: p, note: 'no open dispute on this purchase' };
    const disputeId = str(dispute.id) ?? 'unknown';
    const won = await lifecycle.disputeWon(trx, p, {
      disputeId,
      openedKey: `stripe:dispute:${p.id}:${disputeId}`,
      key: `stripe:dispute-won:${disputeId}`,
      reason: 'Stripe dispute won',
      metadata: { disputeId, chargeId: idOf(dispute.charge) },
    });
    return { purchase: won.purchase, note: `dispute ${disputeId} ${outcome}: granted back ${won.giveBack}` };
  }

  /** Grants the purchase once, then runs again the charge events that arrived before the grant. */
  async function fulfil(
    ctx: InboxContext,
    p: PurchaseRow,
    session: Obj,
    eventId: string | null,
  ): Promise<Outcome> {
    const { trx } = ctx;
    const refs = references(p, session);
    const done = { purchaseId: p.id, userId: p.user_id };
    if (isGranted(p)) {
      await lifecycle.remember(trx, p, refs);
      return { status: 'processed', note: 'already granted', ...done };
    }
    // A `failed` or `expired` purchase may still be paid (e.g. Stripe created the session but our call
    // timed out): Stripe's word that it was paid wins.
    const purchase = await lifecycle.complete(
      trx,
      p,
      {
        key: `stripe:grant:${p.id}`,
        reason: 'Stripe Checkout purchase',
        metadata: {
          packageId: p.package_id,
          sessionId: str(session.id),
          paymentIntentId: idOf(session.payment_intent),
          ...(eventId ? { eventId } : { fulfilledBy: 'checkout session read' }),
        },
      },
      refs,
    );
    // What arrived before the grant, in the order received: events parked on this purchase, and charge
    // events that named its PaymentIntent before any purchase was known by it.
    const keys = [purchaseKey(p.id)];
    if (purchase.stripe_payment_intent_id) keys.push(paymentIntentKey(purchase.stripe_payment_intent_id));
    const applied = await ctx.wake(keys, 'after the grant');
    const replayed = applied > 0 ? `; applied ${applied} earlier event(s)` : '';
    return { status: 'processed', note: `granted ${p.credits} credits${replayed}`, ...done };
  }

  /** A Checkout Session event (or the session as read from Stripe, `eventId` null). */
  async function sessionEvent(
    ctx: InboxContext,
    type: string,
    session: Obj,
    eventId: string | null,
  ): Promise<Outcome> {
    const { trx } = ctx;
    const paymentIntentId = idOf(session.payment_intent);
    if (paymentIntentId) await lockPaymentIntent(trx, paymentIntentId);
    const p = await purchaseForSession(trx, session);
    if (!p) return { status: 'ignored', note: 'no purchase matches this Checkout Session' };
    const done = { purchaseId: p.id, userId: p.user_id };
    const paymentStatus = str(session.payment_status);
    if (type === 'checkout.session.async_payment_succeeded') return fulfil(ctx, p, session, eventId);
    if (type === 'checkout.session.completed') {
      // Stripe's guide: fulfil unless `unpaid` (`no_payment_required` is a paid-in-full session).
      if (paymentStatus === 'paid' || paymentStatus === 'no_payment_required') {
        return fulfil(ctx, p, session, eventId);
      }
      await lifecycle.remember(trx, p, references(p, session));
      return {
        status: 'processed',
        note: `payment_status ${paymentStatus ?? 'missing'}: waiting for checkout.session.async_payment_succeeded`,
        ...done,
      };
    }
    const next: PurchaseStatus = type === 'checkout.session.expired' ? 'expired' : 'failed';
    const closed = await lifecycle.close(trx, p, next, references(p, session));
    if (!closed) return { status: 'processed', note: `purchase is ${p.status}: left as it is`, ...done };
    // Refunds parked on it will never find a grant to take back: they are settled (ignored), and kept for
    // the grant should Stripe report the payment after all.
    await ctx.wake([purchaseKey(p.id)], `the purchase is ${next}`);
    return { status: 'processed', note: `purchase ${next}`, ...done };
  }

  async function chargeEvent(ctx: InboxContext, type: string, object: Obj): Promise<Outcome> {
    const { trx } = ctx;
    const paymentIntentId = idOf(object.payment_intent);
    if (paymentIntentId) await lockPaymentIntent(trx, paymentIntentId);
    const p = await purchaseForCharge(trx, object);
    if (!p) {
      // Kept: if a purchase is granted later with this PaymentIntent, the grant applies it.
      return {
        status: 'ignored',
        note: 'no purchase matches this charge (yet)',
        waitingFor: paymentIntentId ? paymentIntentKey(paymentIntentId) : null,
      };
    }
    const done = { purchaseId: p.id, userId: p.user_id };
    if (!isGranted(p)) {
      if (p.status === 'pending') {
        // Not lost: run again, in the order received, by the transaction that grants the purchase.
        return {
          status: 'parked',
          note: `purchase is ${p.status}: parked until it is granted`,
          waitingFor: purchaseKey(p.id),
          ...done,
        };
      }
      return {
        status: 'ignored',
        note: `purchase is ${p.status}: nothing was granted, so nothing to take back (applied if it is paid after all)`,
        waitingFor: purchaseKey(p.id),
        ...done,
      };
    }
    const applied =
      type === 'charge.refunded'
        ? await refund(trx, p, object)
        : type === 'charge.dispute.created'
          ? await disputeOpened(trx, p, object)
          : await disputeClosed(trx, p, object);
    return { status: 'processed', note: applied.note, ...done };
  }

  const handler: ProviderHandler<StripeEvent> & {
    sessionEvent: typeof sessionEvent;
  } = {
    // Woken events run in the order received (the inbox's default).
    parse: parseStripeEvent,
    async handle(ctx, event) {
      switch (event.type) {
        case 'checkout.session.completed':
        case 'checkout.session.async_payment_succeeded':
        case 'checkout.session.async_payment_failed':
        case 'checkout.session.expired':
          return sessionEvent(ctx, event.type, event.object, event.id);
        case 'charge.refunded':
        case 'charge.dispute.created':
        case 'charge.dispute.closed':
          return chargeEvent(ctx, event.type, event.object);
        default:
          return { status: 'ignored', note: `event type ${event.type} is not handled` };
      }
    },
    sessionEvent,
  };
  return handler;
}

export type StripeHandler = ReturnType<typeof createStripeHandler>;

/** POST /webhooks/stripe: verifies the signature, then hands the event to the inbox. */
export function createStripeWebhookService(config: Config, inbox: ProviderInbox) {
  return {
    /**
     * Verifies, stores once and applies one delivery. A repeated event id answers `duplicate` and changes
     * nothing; concurrent deliveries of one event wait on its primary key, so one applies it.
     */
    async handle(rawBody: Buffer | string | undefined, signature: unknown): Promise<StripeWebhookResult> {
      const secret = config.stripe.webhookSecret;
      if (!secret) throw unavailable('stripe.webhook_not_configured');
      if (typeof signature !== 'string' || signature.length === 0) {
        throw new AppError('invalid_signature', msg('stripe.signature_missing'));
      }
      let raw: unknown;
      try {
        // Stripe's library refuses old timestamps only: one signed for the future is refused here.
        const signedAt = Number(/(?:^|,)\s*t=(\d{1,15})(?:,|$)/.exec(signature)?.[1]);
        if (signedAt > Date.now() / 1000 + TOLERANCE_SECONDS) throw new Error('timestamp in the future');
        raw = constructStripeEvent(rawBody ?? '', signature, secret, TOLERANCE_SECONDS);
      } catch {
        throw new AppError(
          'invalid_signature',
          msg('stripe.signature_invalid', { seconds: TOLERANCE_SECONDS }),
        );
      }
      // Stored as sent where Postgres can store it; NUL and lone surrogates become U+FFFD.
      const payload = storableProviderEvent(raw);
      const event = parseStripeEvent(payload);
      const received = await inbox.receive({
        provider: 'stripe',
        eventId: event.id,
        type: event.type,
        payload,
        source: 'webhook',
      });
      return {
        received: true,
        eventId: event.id,
        type: event.type,
        outcome: received.duplicate ? 'duplicate' : received.status,
        duplicate: received.duplicate,
        purchaseId: received.duplicate ? null : received.purchaseId,
        note: received.note,
      };
    },
  };
}

export type StripeWebhookService = ReturnType<typeof createStripeWebhookService>;
