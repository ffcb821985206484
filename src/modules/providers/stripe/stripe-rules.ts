/**
 * Stripe's business rules as pure functions: what an event asks for, and what it does to the purchase it
 * belongs to, as a PurchaseAction for the purchase lifecycle. No database, no signature check (the webhook
 * service verifies; the handler looks the purchase up under its locks and applies). Unit-tested without
 * Postgres: tests/modules/providers/stripe/stripe-rules.test.ts.
 */
import type { PurchaseRow } from '../../../db/database.ts';
import { AppError } from '../../../errors.ts';
import { msg } from '../../../messages.ts';
import { isGranted, type PurchaseAction, type PurchaseChanges } from '../../purchases/index.ts';
import type { Outcome } from '../inbox/provider-inbox.service.ts';

type Obj = Record<string, unknown>;

/** A Stripe event as the handler reads it. */
export interface StripeEvent {
  id: string;
  type: string;
  object: Obj;
  created: number;
}

/** The event types whose object (a Charge or a Dispute) names a PaymentIntent. */
export const STRIPE_CHARGE_EVENT_TYPES = [
  'charge.refunded',
  'charge.dispute.created',
  'charge.dispute.closed',
];

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

/** Parses a stored or verified Stripe event; throws 400 when it is not one. */
export function parseStripeEvent(payload: unknown): StripeEvent {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new AppError('validation_failed', msg('stripe.event_invalid'));
  }
  const e = payload as { id?: unknown; type?: unknown; created?: unknown; data?: { object?: unknown } };
  const id = str(e.id);
  const type = str(e.type);
  const object = e.data?.object;
  if (!id || !type || !object || typeof object !== 'object') {
    throw new AppError('validation_failed', msg('stripe.event_invalid'));
  }
  return { id, type, object: object as Obj, created: int(e.created) ?? 0 };
}

/** ceil(credits × refunded / amount) without leaving exact integer arithmetic. */
export function proportionalCeil(credits: number, refunded: number, amount: number): number {
  const n = BigInt(credits) * BigInt(refunded);
  const d = BigInt(amount);
  return Number((n + d - 1n) / d);
}

/** Waiting keys (010_provider_event_inbox.sql): the purchase's grant, and a PaymentIntent no purchase names yet. */
export const purchaseKey = (purchaseId: string) => `purchase:${purchaseId}`;
export const paymentIntentKey = (paymentIntentId: string) => `stripe:payment_intent:${paymentIntentId}`;

/** What a Checkout Session says about its purchase. */
export interface SessionFacts {
  sessionId?: string;
  paymentIntentId?: string;
  /** `metadata.purchaseId`, else `client_reference_id`. */
  purchaseId?: string;
  paymentStatus?: string;
  /** What the buyer paid: `amount_total` in `currency` (minor units, as Stripe counts them). */
  paid?: { price: number; currency: string };
}

/** What a Charge or a Dispute says about its purchase. */
export interface ChargeFacts {
  paymentIntentId?: string;
  /** `metadata.purchaseId` (a charge created with the PaymentIntent's metadata). */
  purchaseId?: string;
}

export type SessionStep = 'grant' | 'awaitPayment' | 'markFailed' | 'markExpired';

/** What an event asks for, before its purchase is known. */
export type StripeEventAction =
  | { on: 'session'; step: SessionStep; session: SessionFacts; object: Obj }
  | { on: 'charge'; step: 'refund' | 'disputeOpened' | 'disputeClosed'; charge: ChargeFacts; object: Obj }
  | { on: 'none'; note: string };

export function sessionFacts(session: Obj): SessionFacts {
  const amountTotal = int(session.amount_total);
  const currency = str(session.currency)?.toLowerCase();
  return {
    sessionId: str(session.id),
    paymentIntentId: idOf(session.payment_intent),
    purchaseId: metadataOf(session, 'purchaseId') ?? str(session.client_reference_id),
    paymentStatus: str(session.payment_status),
    ...(amountTotal !== undefined && amountTotal >= 0 && currency && /^[a-z]{3}$/.test(currency)
      ? { paid: { price: amountTotal, currency } }
      : {}),
  };
}

/** The rule for each event type (section 5 of the contract). */
export function stripeEventAction(type: string, object: Obj): StripeEventAction {
  const session = (step: SessionStep): StripeEventAction => ({
    on: 'session',
    step,
    session: sessionFacts(object),
    object,
  });
  const charge = (step: 'refund' | 'disputeOpened' | 'disputeClosed'): StripeEventAction => ({
    on: 'charge',
    step,
    charge: { paymentIntentId: idOf(object.payment_intent), purchaseId: metadataOf(object, 'purchaseId') },
    object,
  });
  switch (type) {
    case 'checkout.session.async_payment_succeeded':
      return session('grant');
    case 'checkout.session.completed': {
      // Stripe's guide: fulfil unless `unpaid` (`no_payment_required` is a paid-in-full session).
      const paid = str(object.payment_status);
      return session(paid === 'paid' || paid === 'no_payment_required' ? 'grant' : 'awaitPayment');
    }
    case 'checkout.session.async_payment_failed':
      return session('markFailed');
    case 'checkout.session.expired':
      return session('markExpired');
    case 'charge.refunded':
      return charge('refund');
    case 'charge.dispute.created':
      return charge('disputeOpened');
    case 'charge.dispute.closed':
      return charge('disputeClosed');
    default:
      return { on: 'none', note: `event type ${type} is not handled` };
  }
}

/** Whether the purchase found for a session is this session's (not another integration's on the account). */
export function sessionMatches(p: PurchaseRow | undefined, s: SessionFacts): p is PurchaseRow {
  if (p?.provider !== 'stripe') return false;
  return !(p.provider_ref && s.sessionId && p.provider_ref !== s.sessionId);
}

/** Whether a purchase found by `metadata.purchaseId` is the charge's (no other PaymentIntent on it). */
export function chargeMatches(p: PurchaseRow | undefined, c: ChargeFacts): p is PurchaseRow {
  if (p?.provider !== 'stripe') return false;
  return !(
    p.stripe_payment_intent_id &&
    c.paymentIntentId &&
    p.stripe_payment_intent_id !== c.paymentIntentId
  );
}

/** Keeps the session id and PaymentIntent id on the purchase (refunds and disputes find it by the latter). */
export function references(p: PurchaseRow, s: SessionFacts): PurchaseChanges {
  const changes: PurchaseChanges = {};
  if (!p.provider_ref && s.sessionId) changes.provider_ref = s.sessionId;
  if (!p.stripe_payment_intent_id && s.paymentIntentId) changes.stripe_payment_intent_id = s.paymentIntentId;
  return changes;
}

/**
 * What a session event does to its purchase. `wake`: what the handler runs again after applying it (`grant`:
 * the events that arrived before the grant; `close`: refunds parked on a purchase that will not be paid).
 */
export interface SessionDecision {
  action: PurchaseAction;
  /** The outcome's note when the action itself has none to give. */
  note?: string;
  wake?: 'grant' | 'close';
}

export function sessionDecision(
  p: PurchaseRow,
  step: SessionStep,
  s: SessionFacts,
  eventId: string | null,
): SessionDecision {
  const refs = references(p, s);
  switch (step) {
    case 'grant':
      if (isGranted(p)) return { action: { type: 'remember', refs }, note: 'already granted' };
      // A `failed` or `expired` purchase may still be paid (e.g. Stripe created the session but our call
      // timed out): Stripe's word that it was paid wins. Its price is what the buyer paid (a coupon, a
      // Price in another currency), when the session says; else the package's, taken at checkout.
      return {
        action: {
          type: 'grant',
          refs: { ...refs, ...(s.paid ?? {}) },
          entry: {
            key: `stripe:grant:${p.id}`,
            reason: 'Stripe Checkout purchase',
            metadata: {
              packageId: p.package_id,
              sessionId: s.sessionId,
              paymentIntentId: s.paymentIntentId,
              ...(eventId ? { eventId } : { fulfilledBy: 'checkout session read' }),
            },
          },
        },
        wake: 'grant',
      };
    case 'awaitPayment':
      return {
        action: { type: 'remember', refs },
        note: `payment_status ${s.paymentStatus ?? 'missing'}: waiting for checkout.session.async_payment_succeeded`,
      };
    case 'markFailed':
    case 'markExpired':
      return { action: { type: step, refs }, wake: 'close' };
  }
}

/** Before a charge event applies: it waits for the grant, or has nothing to take back. */
export function chargeGate(p: PurchaseRow): Outcome | undefined {
  if (isGranted(p)) return undefined;
  const done = { purchaseId: p.id, userId: p.user_id };
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

/** What a charge event (refund, dispute) does to its granted purchase: an action, or only a note. */
export type ChargeDecision = { action: PurchaseAction; notePrefix?: string } | { note: string };

/** `charge.refunded`: claw back in proportion to `amount_refunded / amount` (cumulative, rounded up). */
export function refundDecision(p: PurchaseRow, charge: Obj): ChargeDecision {
  const amount = int(charge.amount);
  const amountRefunded = int(charge.amount_refunded);
  if (!amount || amount <= 0 || amountRefunded === undefined) {
    return { note: 'the charge has no amount or amount_refunded: nothing to do' };
  }
  const refunded = Math.min(Math.max(amountRefunded, 0), amount);
  const target = proportionalCeil(p.credits, refunded, amount);
  return {
    action: {
      type: 'clawBackTo',
      targetCredits: target,
      full: refunded >= amount,
      entry: {
        // Per cumulative target: a second delivery of the same refund state takes nothing twice.
        key: `stripe:refund:${p.id}:${target}`,
        reason: 'Stripe refund',
        metadata: { chargeId: str(charge.id), amount, amountRefunded: refunded, targetCredits: target },
      },
    },
  };
}

/** The ledger key of a dispute's clawback: its opening's, or a lost dispute's whose opening was missed. */
const disputeKey = (p: PurchaseRow, disputeId: string) => `stripe:dispute:${p.id}:${disputeId}`;

/** `charge.dispute.created`: claw back the rest, once per dispute. */
export function disputeOpenedDecision(p: PurchaseRow, dispute: Obj): ChargeDecision {
  const disputeId = str(dispute.id) ?? 'unknown';
  // A charge is disputed once: an opening that arrives after its closing changes nothing.
  if (p.dispute_outcome)
    return { note: `the dispute of this purchase was closed already (${p.dispute_outcome})` };
  return {
    action: {
      type: 'disputeOpened',
      disputeId,
      entry: {
        key: disputeKey(p, disputeId),
        reason: 'Stripe dispute opened',
        metadata: { disputeId, chargeId: idOf(dispute.charge), disputeReason: str(dispute.reason) },
      },
    },
  };
}

/**
 * `charge.dispute.closed`: won (or an inquiry closed, `warning_closed`: no money left the account) grants back
 * what the dispute took; lost makes the purchase refunded, its credits clawed back. Either way, whatever the
 * purchase's status (its opening may have been missed), the closing is recorded: purchase.dispute_closed.
 */
export function disputeClosedDecision(p: PurchaseRow, dispute: Obj): ChargeDecision {
  const status = str(dispute.status) ?? 'unknown';
  const outcome = status === 'won' || status === 'warning_closed' ? 'won' : status === 'lost' ? 'lost' : null;
  if (!outcome) return { note: `dispute closed as ${status}: nothing to do` };
  if (p.dispute_outcome)
    return { note: `the dispute of this purchase was closed already (${p.dispute_outcome})` };
  const disputeId = str(dispute.id) ?? 'unknown';
  const chargeId = idOf(dispute.charge);
  const notePrefix = `dispute ${disputeId} ${status}: `;
  if (outcome === 'lost') {
    return {
      action: {
        type: 'disputeLost',
        disputeId,
        entry: {
          key: disputeKey(p, disputeId),
          reason: 'Stripe dispute lost',
          metadata: { disputeId, chargeId, disputeReason: str(dispute.reason) },
        },
      },
      notePrefix,
    };
  }
  return {
    action: {
      type: 'disputeWon',
      disputeId,
      openedKey: disputeKey(p, disputeId),
      entry: {
        key: `stripe:dispute-won:${disputeId}`,
        reason: 'Stripe dispute won',
        metadata: { disputeId, chargeId },
      },
    },
    notePrefix,
  };
}

export function chargeDecision(
  p: PurchaseRow,
  step: 'refund' | 'disputeOpened' | 'disputeClosed',
  object: Obj,
): ChargeDecision {
  if (step === 'refund') return refundDecision(p, object);
  if (step === 'disputeOpened') return disputeOpenedDecision(p, object);
  return disputeClosedDecision(p, object);
}
