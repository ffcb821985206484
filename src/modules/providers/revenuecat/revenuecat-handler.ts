import { findPackageByProductId, lockProductMapping } from '../../catalog/index.ts';
import { findPurchaseByProviderRef, lockProviderRef, type PurchaseLifecycle } from '../../purchases/index.ts';
import type { InboxContext, Outcome, ProviderHandler } from '../inbox/provider-inbox.service.ts';
import { parseRevenuecatEvent, type RevenuecatEvent } from './revenuecat-event.ts';
import {
  grantEntry,
  isOutcome,
  refundDecision,
  refundKey,
  reversalDecision,
  revenuecatAction,
  storePrice,
  transactionKey,
  waitForMapping,
  waitForPurchase,
} from './revenuecat-rules.ts';

const PROVIDER = 'revenuecat' as const;

/**
 * Runs RevenueCat's rules (revenuecat-rules.ts) inside the inbox's transaction. Grants are once per store
 * transaction (`transaction_id`, key `revenuecat:grant:<tx>`), whatever the event ids and whichever way the
 * transaction arrives (webhook, sync, replay); everything on one transaction is serialized by its advisory lock.
 */
export function createRevenuecatHandler(lifecycle: PurchaseLifecycle, opts: { allowSandbox: boolean }) {
  /** NON_RENEWING_PURCHASE, INITIAL_PURCHASE, RENEWAL: a completed purchase and its grant, once per transaction. */
  async function purchase(
    ctx: InboxContext,
    event: RevenuecatEvent,
    a: { transactionId: string; productId: string; userId: string },
  ): Promise<Outcome> {
    const { trx } = ctx;
    // The same lock as saving a mapping of this product (a purchase parked now is seen by that save's wake-up),
    // then the transaction's.
    await lockProductMapping(trx, a.productId);
    await lockProviderRef(trx, PROVIDER, a.transactionId);
    // Recorded before: a repeat (whatever the product's mapping is now), answered by the grant key below.
    const existing = await findPurchaseByProviderRef(trx, PROVIDER, a.transactionId, true);
    const pkg = existing ? undefined : await findPackageByProductId(trx, a.productId);
    if (!existing && !pkg) return waitForMapping(a.productId, a.userId);
    // The store has been paid: the purchase is granted even when the package was deactivated since.
    const { purchase: row, granted } = await lifecycle.createCompleted(
      trx,
      {
        existing,
        userId: a.userId,
        pkg,
        provider: PROVIDER,
        providerRef: a.transactionId,
        paid: storePrice(event),
      },
      grantEntry(event, a, { packageId: existing?.package_id ?? pkg?.id, name: pkg?.name }),
    );
    const done = { purchaseId: row.id, userId: row.user_id };
    if (granted.replayed) {
      return { status: 'ignored', note: `transaction ${a.transactionId} was already granted`, ...done };
    }
    // Refunds (and their reversals) that arrived before the purchase, in the order RevenueCat sent them.
    await ctx.wake([transactionKey(a.transactionId)], 'after the purchase arrived');
    return { status: 'processed', note: `granted ${row.credits} credits to ${row.user_id}`, ...done };
  }

  /** A refund, or its reversal: applied to the transaction's purchase, or parked until it is known. */
  async function refundOrReversal(
    ctx: InboxContext,
    event: RevenuecatEvent,
    a: { type: 'refund' | 'refundReversed'; transactionId: string },
  ): Promise<Outcome> {
    const { trx } = ctx;
    await lockProviderRef(trx, PROVIDER, a.transactionId);
    const p = await findPurchaseByProviderRef(trx, PROVIDER, a.transactionId, true);
    if (!p) return waitForPurchase(a.transactionId);
    const decision =
      a.type === 'refund'
        ? refundDecision(p, event, a.transactionId)
        : reversalDecision(
            p,
            event,
            a.transactionId,
            p.status === 'refunded' ? 0 : await lifecycle.refundCount(trx, p),
          );
    if (isOutcome(decision)) return decision;
    const done = { purchaseId: p.id, userId: p.user_id };
    const applied = await lifecycle.apply(trx, p, decision);
    if (!applied.changed) return { status: 'ignored', note: applied.note, ...done };
    // A REFUND_REVERSED that arrived before this refund was waiting for it.
    if (a.type === 'refund') await ctx.wake([refundKey(a.transactionId)], 'after the refund it reverses');
    return { status: 'processed', note: applied.note, ...done };
  }

  const handler: ProviderHandler<RevenuecatEvent> = {
    parse: parseRevenuecatEvent,
    compare: (a, b) => (a.event_timestamp_ms ?? 0) - (b.event_timestamp_ms ?? 0),
    async handle(ctx, event) {
      const a = revenuecatAction(event, opts);
      if (a.type === 'ignore') return { status: 'ignored', note: a.note };
      if (a.type === 'purchase') return purchase(ctx, event, a);
      return refundOrReversal(ctx, event, a);
    },
  };
  return handler;
}
