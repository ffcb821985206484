import type { Config } from '../config.ts';
import type { Db, PurchaseRow, PurchaseStatus } from '../db/database.ts';
import { type Executor, findEntryByIdempotencyKey } from '../db/ledger.repository.ts';
import {
  findPurchase,
  findPurchaseByPaymentIntent,
  findPurchaseByProviderRef,
  type PurchaseChanges,
  updatePurchase,
} from '../db/purchases.repository.ts';
import {
  lockPaymentIntent,
  STRIPE_CHARGE_EVENT_TYPES,
  unmatchedChargeEvents,
} from '../db/stripe.repository.ts';
import { claimEvent, parkedEvents, settleEvent } from '../db/webhook-events.repository.ts';
import { AppError, unavailable } from '../errors.ts';
import type { LedgerService } from './ledger.service.ts';
import { expiryFor } from './packages.service.ts';
import { constructStripeEvent } from './stripe.client.ts';

/** Stripe's signature tolerance: a signed timestamp older or newer than this is refused. */
const TOLERANCE_SECONDS = 300;

export type WebhookOutcome = 'processed' | 'ignored' | 'parked' | 'duplicate';

export interface StripeWebhookResult {
  received: true;
  eventId: string;
  type: string;
  outcome: WebhookOutcome;
  duplicate: boolean;
  purchaseId: string | null;
  note: string | null;
}

interface Handled {
  status: 'processed' | 'ignored' | 'parked';
  purchaseId: string | null;
  note: string;
}

interface Applied {
  purchase: PurchaseRow;
  note: string;
}

type Obj = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const int = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
/** An id field that Stripe sends as a string, or as the object when expanded. */
const idOf = (v: unknown): string | undefined =>
  str(v) ?? (v && typeof v === 'object' ? str((v as Obj).id) : undefined);
const metadataOf = (o: Obj, key: string): string | undefined =>
  o.metadata && typeof o.metadata === 'object' ? str((o.metadata as Obj)[key]) : undefined;

/** Statuses in which the purchase's credits were granted (refunds and disputes apply to these only). */
const GRANTED: ReadonlySet<PurchaseStatus> = new Set([
  'completed',
  'partially_refunded',
  'refunded',
  'disputed',
]);

/** ceil(credits × refunded / amount) without leaving exact integer arithmetic. */
function proportionalCeil(credits: number, refunded: number, amount: number): number {
  const n = BigInt(credits) * BigInt(refunded);
  const d = BigInt(amount);
  return Number((n + d - 1n) / d);
}

/** The status a granted purchase has from its refunds alone (after a dispute is won, for instance). */
function statusFromRefunds(credits: number, refundedCredits: number): PurchaseStatus {
  if (refundedCredits <= 0) return 'completed';
  return refundedCredits >= credits ? 'refunded' : 'partially_refunded';
}

/**
 * Stripe webhooks: every event is verified, stored once by its id, and applied in the same transaction as
 * its ledger effects, under the purchase's row lock. Credits always come from the purchase's snapshot.
 *
 * Accounting on the purchase row:
 * - `credits_reversed`: credits requested back from this purchase and still standing, for refunds and for
 *   an open dispute. What was requested counts, including the part the balance could not cover
 *   (`metadata.uncollected` on the entry): the next refund increment then asks only for its own share,
 *   rather than chasing credits the user has since bought elsewhere.
 * - `credits_disputed`: the part of `credits_reversed` that the open dispute requested.
 */
export function createStripeWebhookService(db: Db, config: Config, ledger: LedgerService) {
  const update = (ex: Executor, p: PurchaseRow, changes: PurchaseChanges) =>
    updatePurchase(ex, p.id, changes);

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

  async function refund(trx: Executor, p: PurchaseRow, charge: Obj): Promise<Applied> {
    const amount = int(charge.amount);
    const amountRefunded = int(charge.amount_refunded);
    if (!amount || amount <= 0 || amountRefunded === undefined) {
      return { purchase: p, note: 'the charge has no amount or amount_refunded: nothing to do' };
    }
    const refunded = Math.min(Math.max(amountRefunded, 0), amount);
    const target = proportionalCeil(p.credits, refunded, amount);
    const refundedBefore = p.credits_reversed - p.credits_disputed;
    const increment = target - refundedBefore;
    if (increment <= 0) {
      return { purchase: p, note: `no new refund: ${refundedBefore} credits already reversed for refunds` };
    }
    // While a dispute is open it already took the rest back: the refund is covered by that first.
    const fromDispute = Math.min(increment, p.credits_disputed);
    const toTake = increment - fromDispute;
    let taken = 0;
    if (toTake > 0) {
      const result = await ledger.clawback(
        {
          userId: p.user_id,
          amount: toTake,
          source: 'stripe',
          purchaseId: p.id,
          // Per cumulative target: a second delivery of the same refund state takes nothing twice.
          idempotencyKey: `stripe:refund:${p.id}:${target}`,
          reason: 'Stripe refund',
          metadata: { chargeId: str(charge.id), amount, amountRefunded: refunded, targetCredits: target },
        },
        trx,
      );
      taken = result.taken;
    }
    const status: PurchaseStatus =
      p.status === 'disputed' ? 'disputed' : refunded >= amount ? 'refunded' : 'partially_refunded';
    const purchase = await update(trx, p, {
      status,
      credits_reversed: p.credits_reversed + toTake,
      credits_disputed: p.credits_disputed - fromDispute,
    });
    return {
      purchase,
      note: `refund to ${target} of ${p.credits} credits: requested ${toTake}, took ${taken}`,
    };
  }

  async function disputeOpened(trx: Executor, p: PurchaseRow, dispute: Obj): Promise<Applied> {
    if (p.status === 'disputed') return { purchase: p, note: 'a dispute is already open for this purchase' };
    const disputeId = str(dispute.id) ?? 'unknown';
    const rest = p.credits - p.credits_reversed;
    let taken = 0;
    if (rest > 0) {
      const result = await ledger.clawback(
        {
          userId: p.user_id,
          amount: rest,
          source: 'stripe',
          purchaseId: p.id,
          idempotencyKey: `stripe:dispute:${p.id}:${disputeId}`,
          reason: 'Stripe dispute opened',
          metadata: { disputeId, chargeId: idOf(dispute.charge), disputeReason: str(dispute.reason) },
        },
        trx,
      );
      taken = result.taken;
    }
    const purchase = await update(trx, p, {
      status: 'disputed',
      credits_reversed: p.credits_reversed + rest,
      credits_disputed: rest,
    });
    return { purchase, note: `dispute ${disputeId}: requested ${rest}, took ${taken}` };
  }

  async function disputeClosed(trx: Executor, p: PurchaseRow, dispute: Obj): Promise<Applied> {
    const outcome = str(dispute.status) ?? 'unknown';
    // `warning_closed`: an inquiry that never became a chargeback, so no money left the account either.
    if (outcome !== 'won' && outcome !== 'warning_closed') {
      return { purchase: p, note: `dispute closed as ${outcome}: the credits stay reversed` };
    }
    if (p.status !== 'disputed') return { purchase: p, note: 'no open dispute on this purchase' };
    const disputeId = str(dispute.id) ?? 'unknown';
    const entry = await findEntryByIdempotencyKey(trx, p.user_id, `stripe:dispute:${p.id}:${disputeId}`);
    // Exactly what the dispute's clawback took (not what it asked for), less what refunds took over since.
    const giveBack = Math.min(entry ? -entry.amount : 0, p.credits_disputed);
    if (giveBack > 0) {
      await ledger.grant(
        {
          userId: p.user_id,
          amount: giveBack,
          source: 'stripe',
          purchaseId: p.id,
          idempotencyKey: `stripe:dispute-won:${disputeId}`,
          reason: 'Stripe dispute won',
          metadata: { disputeId, chargeId: idOf(dispute.charge) },
          // The credits come back with the expiry they had.
          expiresAt: expiryFor(p.credit_expiry_days, p.completed_at ?? new Date()),
        },
        trx,
      );
    }
    const refundedCredits = p.credits_reversed - p.credits_disputed;
    const purchase = await update(trx, p, {
      status: statusFromRefunds(p.credits, refundedCredits),
      credits_reversed: refundedCredits,
      credits_disputed: 0,
    });
    return { purchase, note: `dispute ${disputeId} ${outcome}: granted back ${giveBack}` };
  }

  function applyCharge(trx: Executor, p: PurchaseRow, type: string, object: Obj): Promise<Applied> {
    if (type === 'charge.refunded') return refund(trx, p, object);
    if (type === 'charge.dispute.created') return disputeOpened(trx, p, object);
    return disputeClosed(trx, p, object);
  }

  /** Grants the purchase once, then applies the refunds and disputes that arrived before the grant. */
  async function fulfil(trx: Executor, p: PurchaseRow, session: Obj, eventId: string): Promise<Handled> {
    const refs = references(p, session);
    if (GRANTED.has(p.status)) {
      if (Object.keys(refs).length > 0) await update(trx, p, refs);
      return { status: 'processed', purchaseId: p.id, note: 'already granted' };
    }
    // A `failed` or `expired` purchase may still be paid (e.g. Stripe created the session but our call
    // timed out): Stripe's signed word that it was paid wins.
    await ledger.grant(
      {
        userId: p.user_id,
        amount: p.credits,
        source: 'stripe',
        purchaseId: p.id,
        idempotencyKey: `stripe:grant:${p.id}`,
        reason: 'Stripe Checkout purchase',
        metadata: {
          packageId: p.package_id,
          sessionId: str(session.id),
          paymentIntentId: idOf(session.payment_intent),
          eventId,
        },
        expiresAt: expiryFor(p.credit_expiry_days),
      },
      trx,
    );
    let purchase = await update(trx, p, { ...refs, status: 'completed', completed_at: new Date() });

    // What arrived before the grant, in the order received: events parked on this purchase, and charge
    // events that named its PaymentIntent before any purchase was known by it.
    const paymentIntentId = purchase.stripe_payment_intent_id;
    const parked = [
      ...(await parkedEvents(trx, 'stripe', p.id)),
      ...(paymentIntentId ? await unmatchedChargeEvents(trx, paymentIntentId) : []),
    ].sort((a, b) => a.received_at.getTime() - b.received_at.getTime());
    for (const event of parked) {
      const object = ((event.payload as Obj).data as Obj | undefined)?.object as Obj | undefined;
      const applied = object
        ? await applyCharge(trx, purchase, event.type, object)
        : { purchase, note: 'the stored event has no data.object' };
      purchase = applied.purchase;
      await settleEvent(trx, {
        provider: 'stripe',
        eventId: event.event_id,
        status: 'processed',
        note: `applied after the grant (was ${event.status}): ${applied.note}`,
        purchaseId: p.id,
      });
    }
    const replayed = parked.length > 0 ? `; applied ${parked.length} earlier event(s)` : '';
    return { status: 'processed', purchaseId: p.id, note: `granted ${p.credits} credits${replayed}` };
  }

  async function sessionEvent(trx: Executor, type: string, session: Obj, eventId: string): Promise<Handled> {
    const p = await purchaseForSession(trx, session);
    if (!p) return { status: 'ignored', purchaseId: null, note: 'no purchase matches this Checkout Session' };
    const paymentStatus = str(session.payment_status);
    if (type === 'checkout.session.async_payment_succeeded') return fulfil(trx, p, session, eventId);
    if (type === 'checkout.session.completed') {
      // Stripe's guide: fulfil unless `unpaid` (`no_payment_required` is a paid-in-full session).
      if (paymentStatus === 'paid' || paymentStatus === 'no_payment_required') {
        return fulfil(trx, p, session, eventId);
      }
      const refs = references(p, session);
      if (Object.keys(refs).length > 0) await update(trx, p, refs);
      return {
        status: 'processed',
        purchaseId: p.id,
        note: `payment_status ${paymentStatus ?? 'missing'}: waiting for checkout.session.async_payment_succeeded`,
      };
    }
    const next: PurchaseStatus = type === 'checkout.session.expired' ? 'expired' : 'failed';
    if (p.status !== 'pending') {
      return { status: 'processed', purchaseId: p.id, note: `purchase is ${p.status}: left as it is` };
    }
    await update(trx, p, { ...references(p, session), status: next });
    return { status: 'processed', purchaseId: p.id, note: `purchase ${next}` };
  }

  async function chargeEvent(trx: Executor, type: string, object: Obj): Promise<Handled> {
    const p = await purchaseForCharge(trx, object);
    if (!p) {
      // Kept: if a purchase is granted later with this PaymentIntent, the grant applies it.
      return { status: 'ignored', purchaseId: null, note: 'no purchase matches this charge (yet)' };
    }
    if (!GRANTED.has(p.status)) {
      // Not lost: applied, in the order received, by the transaction that grants the purchase.
      return {
        status: 'parked',
        purchaseId: p.id,
        note: `purchase is ${p.status}: parked until it is granted`,
      };
    }
    const applied = await applyCharge(trx, p, type, object);
    return { status: 'processed', purchaseId: p.id, note: applied.note };
  }

  async function dispatch(trx: Executor, type: string, object: Obj, eventId: string): Promise<Handled> {
    const handled = type.startsWith('checkout.session.') || STRIPE_CHARGE_EVENT_TYPES.includes(type);
    const paymentIntentId = handled ? idOf(object.payment_intent) : undefined;
    if (paymentIntentId) await lockPaymentIntent(trx, paymentIntentId);
    switch (type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded':
      case 'checkout.session.async_payment_failed':
      case 'checkout.session.expired':
        return sessionEvent(trx, type, object, eventId);
      case 'charge.refunded':
      case 'charge.dispute.created':
      case 'charge.dispute.closed':
        return chargeEvent(trx, type, object);
      default:
        return { status: 'ignored', purchaseId: null, note: `event type ${type} is not handled` };
    }
  }

  return {
    /**
     * Verifies, stores once and applies one delivery. A repeated event id answers `duplicate` and changes
     * nothing; concurrent deliveries of one event wait on its primary key, so one applies it.
     */
    async handle(rawBody: Buffer | string | undefined, signature: unknown): Promise<StripeWebhookResult> {
      const secret = config.stripe.webhookSecret;
      if (!secret) throw unavailable('Stripe webhooks are not configured');
      if (typeof signature !== 'string' || signature.length === 0) {
        throw new AppError('invalid_signature', 'Missing Stripe-Signature header');
      }
      let event: { id?: unknown; type?: unknown; data?: { object?: unknown } };
      try {
        event = constructStripeEvent(rawBody ?? '', signature, secret, TOLERANCE_SECONDS);
      } catch {
        throw new AppError(
          'invalid_signature',
          `Stripe-Signature does not match the body, or its timestamp is more than ${TOLERANCE_SECONDS} s away`,
        );
      }
      const eventId = str(event.id);
      const type = str(event.type);
      const object = event.data?.object;
      if (!eventId || !type || !object || typeof object !== 'object') {
        throw new AppError('validation_failed', 'body must be a Stripe event with id, type and data.object');
      }

      return db.transaction().execute(async (trx) => {
        const fresh = await claimEvent(trx, { provider: 'stripe', eventId, type, payload: event });
        if (!fresh) {
          return {
            received: true,
            eventId,
            type,
            outcome: 'duplicate',
            duplicate: true,
            purchaseId: null,
            note: 'event already received',
          } satisfies StripeWebhookResult;
        }
        const handled = await dispatch(trx, type, object as Obj, eventId);
        await settleEvent(trx, {
          provider: 'stripe',
          eventId,
          status: handled.status,
          note: handled.note,
          purchaseId: handled.purchaseId,
        });
        return {
          received: true,
          eventId,
          type,
          outcome: handled.status,
          duplicate: false,
          purchaseId: handled.purchaseId,
          note: handled.note,
        } satisfies StripeWebhookResult;
      });
    },
  };
}

export type StripeWebhookService = ReturnType<typeof createStripeWebhookService>;
