/**
 * RevenueCat's business rules as pure functions: what an event asks for, and what it does to the purchase of
 * its store transaction, as a PurchaseAction for the purchase lifecycle. No database (the handler takes the
 * locks, reads the purchase and applies). Unit-tested without Postgres:
 * tests/modules/providers/revenuecat/revenuecat-rules.test.ts.
 */
import type { PurchaseRow } from '../../../db/database.ts';
import { toMinorUnits } from '../../../lib/currency.ts';
import type { EntryFields, PurchaseAction } from '../../purchases/index.ts';
import type { Outcome } from '../inbox/provider-inbox.service.ts';
import type { RevenuecatEvent } from './revenuecat-event.ts';

const ANONYMOUS_PREFIX = '$RCAnonymousID:';
const GRANT_TYPES = new Set(['NON_RENEWING_PURCHASE', 'INITIAL_PURCHASE', 'RENEWAL']);
/** RevenueCat's cancel_reason for a refund (App Store support, Play/Amazon/web refunds). */
export const REFUND_REASON = 'CUSTOMER_SUPPORT';
const NO_CREDIT_EFFECT: Record<string, string> = {
  TEST: 'test event from the RevenueCat dashboard',
  TRANSFER: 'transfer between app user ids: credits stay with the user they were granted to',
  VIRTUAL_CURRENCY_TRANSACTION: "RevenueCat's virtual currency is not this service's credits",
};

const present = (s: string | null | undefined): string | null => (s ? s : null);
const isAnonymous = (id: string) => id.startsWith(ANONYMOUS_PREFIX);

/** Waiting keys (010_provider_event_inbox.sql). */
export const transactionKey = (transactionId: string) => `revenuecat:transaction:${transactionId}`;
export const refundKey = (transactionId: string) => `revenuecat:refund:${transactionId}`;
export const productKey = (productId: string) => `revenuecat:product:${productId}`;

/**
 * The user an event is for: `app_user_id`, unless it is anonymous; then the first non-anonymous id among
 * `original_app_user_id` and `aliases`; else the anonymous id itself.
 */
export function resolveUserId(event: RevenuecatEvent): string | null {
  const appUserId = present(event.app_user_id);
  if (appUserId && !isAnonymous(appUserId)) return appUserId;
  const candidates = [event.original_app_user_id, ...(event.aliases ?? [])]
    .map(present)
    .filter((id): id is string => id !== null);
  return candidates.find((id) => !isAnonymous(id)) ?? appUserId ?? candidates[0] ?? null;
}

/** What an event asks for, before its purchase is known. */
export type RevenuecatAction =
  | { type: 'ignore'; note: string }
  | { type: 'purchase'; transactionId: string; productId: string; userId: string }
  | { type: 'refund' | 'refundReversed'; transactionId: string };

/** The rule for each event type (section 6 of the contract). */
export function revenuecatAction(event: RevenuecatEvent, opts: { allowSandbox: boolean }): RevenuecatAction {
  if (event.environment === 'SANDBOX' && !opts.allowSandbox) return { type: 'ignore', note: 'sandbox' };
  if (GRANT_TYPES.has(event.type)) {
    const transactionId = present(event.transaction_id);
    const productId = present(event.product_id);
    const userId = resolveUserId(event);
    if (!transactionId || !productId || !userId) {
      return { type: 'ignore', note: 'transaction_id, product_id or app_user_id is missing' };
    }
    return { type: 'purchase', transactionId, productId, userId };
  }
  if (event.type === 'CANCELLATION' && event.cancel_reason !== REFUND_REASON) {
    return { type: 'ignore', note: `cancellation (${event.cancel_reason ?? 'no reason'}): no credit change` };
  }
  if (event.type === 'CANCELLATION' || event.type === 'REFUND_REVERSED') {
    const transactionId = present(event.transaction_id);
    if (!transactionId) return { type: 'ignore', note: 'transaction_id is missing' };
    return { type: event.type === 'REFUND_REVERSED' ? 'refundReversed' : 'refund', transactionId };
  }
  return { type: 'ignore', note: NO_CREDIT_EFFECT[event.type] ?? `${event.type}: no credit effect` };
}

/** An event about a store transaction whose purchase is not known yet waits for it (parked). */
export const waitForPurchase = (transactionId: string): Outcome => ({
  status: 'parked',
  note: `waiting for the purchase of transaction ${transactionId}`,
  waitingFor: transactionKey(transactionId),
});

/** A purchase of a product that no package maps: parked until a package maps it. */
export const waitForMapping = (productId: string, userId: string): Outcome => ({
  status: 'parked',
  note: `product ${productId} is not mapped to a credit package: granted when a package maps it`,
  waitingFor: productKey(productId),
  userId,
});

/** The grant of a store transaction: once per `transaction_id`, whichever way it arrives. */
export function grantEntry(
  event: RevenuecatEvent,
  a: { transactionId: string; productId: string },
  sold: { packageId: string | undefined; name: string | undefined },
): EntryFields {
  return {
    key: `revenuecat:grant:${a.transactionId}`,
    reason: `RevenueCat purchase of ${sold.name ?? sold.packageId}`,
    metadata: {
      eventId: event.id,
      eventType: event.type,
      transactionId: a.transactionId,
      productId: a.productId,
      packageId: sold.packageId,
      store: event.store ?? null,
      environment: event.environment ?? null,
      storePrice: {
        priceUsd: event.price ?? null,
        priceInPurchasedCurrency: event.price_in_purchased_currency ?? null,
        currency: event.currency ?? null,
      },
    },
  };
}

/**
 * What the buyer paid: the store's `price_in_purchased_currency` in `currency`, in that currency's minor units
 * (9.99 USD is 999, 1200 JPY is 1200, 1.234 KWD is 1234). Undefined when the event has no usable price (a
 * sync, a field missing): the purchase then records its package's price. `price` (USD, RevenueCat's
 * conversion) is not what the buyer paid, and stays only in the grant's metadata.
 */
export function storePrice(event: RevenuecatEvent): { price: number; currency: string } | undefined {
  const paid = toMinorUnits(event.price_in_purchased_currency, event.currency);
  return paid ? { price: paid.amount, currency: paid.currency } : undefined;
}

/** A refund (CANCELLATION with CUSTOMER_SUPPORT) of a known purchase: takes back its credits, once. */
export function refundDecision(
  p: PurchaseRow,
  event: RevenuecatEvent,
  transactionId: string,
): Outcome | PurchaseAction {
  if (p.status === 'refunded') {
    return { status: 'ignored', note: 'purchase already refunded', purchaseId: p.id, userId: p.user_id };
  }
  return {
    type: 'clawBackAll',
    entry: {
      keyBase: `revenuecat:refund:${transactionId}`,
      reason: 'RevenueCat refund',
      metadata: { eventId: event.id, transactionId, cancelReason: REFUND_REASON },
    },
  };
}

/**
 * REFUND_REVERSED of a known purchase: grants back what the refund took. `refundsSoFar` (read only when the
 * purchase is not refunded) tells a reversal that arrived before its refund from a repeat.
 */
export function reversalDecision(
  p: PurchaseRow,
  event: RevenuecatEvent,
  transactionId: string,
  refundsSoFar: number,
): Outcome | PurchaseAction {
  const done = { purchaseId: p.id, userId: p.user_id };
  if (p.status !== 'refunded') {
    // Before the purchase's first refund: the reversal arrived before its refund (RevenueCat does not
    // promise order), so it waits for it. After a refund and its reversal, another one is a repeat.
    if (refundsSoFar === 0) {
      return {
        status: 'parked',
        note: `waiting for the refund of transaction ${transactionId} that it reverses`,
        waitingFor: refundKey(transactionId),
        ...done,
      };
    }
    return { status: 'ignored', note: `nothing to reverse: purchase is ${p.status}`, ...done };
  }
  return {
    type: 'grantBack',
    entry: {
      keyBase: `revenuecat:refund-reversed:${transactionId}`,
      reason: 'RevenueCat refund reversed',
      metadata: { eventId: event.id, transactionId },
    },
  };
}

/** Whether a rule answered with an outcome (nothing to apply) rather than an action. */
export const isOutcome = (d: Outcome | PurchaseAction): d is Outcome => 'status' in d;
