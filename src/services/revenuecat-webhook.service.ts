import { type Static, Type } from '@sinclair/typebox';
import type { Db, PurchaseRow } from '../db/database.ts';
import { type Executor, lastReversalOf } from '../db/ledger.repository.ts';
import { findPackageByProductId } from '../db/packages.repository.ts';
import {
  findPurchaseByProviderRef,
  insertPurchase,
  lockProviderRef,
  updatePurchase,
} from '../db/purchases.repository.ts';
import { claimEvent, parkedEventsByPayload, settleEvent } from '../db/webhook-events.repository.ts';
import { newId } from './ids.ts';
import type { LedgerOutcome, LedgerService } from './ledger.service.ts';
import { expiryFor } from './packages.service.ts';

const Text = Type.Optional(Type.Union([Type.String(), Type.Null()]));

/**
 * A RevenueCat webhook body. Only `event.id` and `event.type` are required; every other field is optional
 * and unknown fields are kept, since RevenueCat adds fields without notice.
 */
export const RevenuecatWebhookBody = Type.Object(
  {
    api_version: Type.Optional(Type.String()),
    event: Type.Object(
      {
        id: Type.String({ minLength: 1, maxLength: 255, description: 'Unique per event; retries keep it' }),
        type: Type.String({ minLength: 1, maxLength: 100, description: 'e.g. NON_RENEWING_PURCHASE' }),
        app_user_id: Text,
        original_app_user_id: Text,
        aliases: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
        product_id: Text,
        transaction_id: Text,
        environment: Text,
        store: Text,
        cancel_reason: Text,
        price: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
        price_in_purchased_currency: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
        currency: Text,
        purchased_at_ms: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
        event_timestamp_ms: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: true },
);
export type RevenuecatWebhookBody = Static<typeof RevenuecatWebhookBody>;
type RevenuecatEvent = RevenuecatWebhookBody['event'];

export const RevenuecatDeliveryResult = Type.Object({
  eventId: Type.String(),
  type: Type.String(),
  outcome: Type.Union(
    ['processed', 'ignored', 'parked', 'duplicate'].map((o) => Type.Literal(o)),
    { description: 'duplicate: the event id was stored before, nothing was done again' },
  ),
  note: Type.Union([Type.String(), Type.Null()]),
  purchaseId: Type.Union([Type.String(), Type.Null()]),
});
export type RevenuecatDeliveryResult = Static<typeof RevenuecatDeliveryResult>;

interface Handled {
  status: 'processed' | 'ignored' | 'parked';
  note: string | null;
  purchaseId: string | null;
}

const PROVIDER = 'revenuecat';
const ANONYMOUS_PREFIX = '$RCAnonymousID:';
const GRANT_TYPES = new Set(['NON_RENEWING_PURCHASE', 'INITIAL_PURCHASE', 'RENEWAL']);
/** RevenueCat's cancel_reason for a refund (App Store support, Play/Amazon/web refunds). */
const REFUND_REASON = 'CUSTOMER_SUPPORT';
/** A refund and its reversal alternate on one purchase; more cycles than this are left to an operator. */
const MAX_REFUND_CYCLES = 20;
const NO_CREDIT_EFFECT: Record<string, string> = {
  TEST: 'test event from the RevenueCat dashboard',
  TRANSFER: 'transfer between app user ids: credits stay with the user they were granted to',
  VIRTUAL_CURRENCY_TRANSACTION: "RevenueCat's virtual currency is not this service's credits",
};

const present = (s: string | null | undefined): string | null => (s ? s : null);
const isAnonymous = (id: string) => id.startsWith(ANONYMOUS_PREFIX);

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

const handled = (status: Handled['status'], note: string | null, purchaseId: string | null = null) => ({
  status,
  note,
  purchaseId,
});

/**
 * Writes with the first unused key of a series (`base`, `base:2`, `base:3`, ...). Refunds and reversals
 * alternate on a purchase, so the n-th refund of a transaction needs its own key; a used key answers a
 * replay (nothing written), which is how the loop learns that cycle is done.
 */
async function withFreshKey(
  base: string,
  write: (key: string) => Promise<LedgerOutcome>,
): Promise<LedgerOutcome | null> {
  for (let n = 1; n <= MAX_REFUND_CYCLES; n++) {
    const outcome = await write(n === 1 ? base : `${base}:${n}`);
    if (!outcome.replayed) return outcome;
  }
  return null;
}

/**
 * RevenueCat webhooks: each delivery is stored once by event id and applied in the same transaction as
 * its ledger effects. Grants are once per store transaction (`transaction_id`), whatever the event ids.
 */
export function createRevenuecatWebhookService(
  db: Db,
  ledger: LedgerService,
  opts: { allowSandbox: boolean },
) {
  /** A refund (CANCELLATION with CUSTOMER_SUPPORT): takes back the purchase's credits, never below zero. */
  async function refund(trx: Executor, event: RevenuecatEvent, purchase: PurchaseRow): Promise<Handled> {
    if (purchase.status === 'refunded') return handled('ignored', 'purchase already refunded', purchase.id);
    const amount = purchase.credits - purchase.credits_reversed;
    const taken = await withFreshKey(`revenuecat:refund:${purchase.provider_ref}`, (key) =>
      ledger.clawback(
        {
          userId: purchase.user_id,
          amount,
          source: PROVIDER,
          purchaseId: purchase.id,
          idempotencyKey: key,
          reason: 'RevenueCat refund',
          metadata: { eventId: event.id, transactionId: purchase.provider_ref, cancelReason: REFUND_REASON },
        },
        trx,
      ),
    );
    if (!taken) return handled('ignored', `more than ${MAX_REFUND_CYCLES} refunds: not applied`, purchase.id);
    const credits = 0 - taken.entry.amount;
    // creditsReversed counts what was asked back, as for Stripe; what the balance could not cover is the
    // entry's metadata.uncollected, and a reversal of this refund grants back only what the entry took.
    await updatePurchase(trx, purchase.id, {
      status: 'refunded',
      credits_reversed: purchase.credits_reversed + amount,
    });
    return handled('processed', `refund: took back ${credits} of ${amount} credits`, purchase.id);
  }

  /** REFUND_REVERSED: grants back what the refund took; the purchase is completed again. */
  async function reverseRefund(
    trx: Executor,
    event: RevenuecatEvent,
    purchase: PurchaseRow,
  ): Promise<Handled> {
    if (purchase.status !== 'refunded') {
      return handled('ignored', `nothing to reverse: purchase is ${purchase.status}`, purchase.id);
    }
    const refunded = await lastReversalOf(trx, purchase.user_id, purchase.id);
    const amount = refunded ? 0 - refunded.amount : 0;
    if (amount > 0) {
      const granted = await withFreshKey(`revenuecat:refund-reversed:${purchase.provider_ref}`, (key) =>
        ledger.grant(
          {
            userId: purchase.user_id,
            amount,
            source: PROVIDER,
            purchaseId: purchase.id,
            idempotencyKey: key,
            reason: 'RevenueCat refund reversed',
            metadata: { eventId: event.id, transactionId: purchase.provider_ref },
            expiresAt: expiryFor(purchase.credit_expiry_days),
          },
          trx,
        ),
      );
      if (!granted) {
        return handled('ignored', `more than ${MAX_REFUND_CYCLES} reversals: not applied`, purchase.id);
      }
    }
    await updatePurchase(trx, purchase.id, { status: 'completed', credits_reversed: 0 });
    return handled('processed', `refund reversed: granted back ${amount} credits`, purchase.id);
  }

  /** A refund or its reversal; before the transaction's purchase exists, the event waits (parked). */
  async function applyToPurchase(trx: Executor, event: RevenuecatEvent, transactionId: string) {
    const purchase = await findPurchaseByProviderRef(trx, PROVIDER, transactionId, true);
    if (!purchase) return handled('parked', `waiting for the purchase of transaction ${transactionId}`);
    return event.type === 'REFUND_REVERSED'
      ? reverseRefund(trx, event, purchase)
      : refund(trx, event, purchase);
  }

  /** Applies the parked refunds of a transaction whose purchase now exists, in the order RevenueCat sent them. */
  async function replayParked(trx: Executor, transactionId: string) {
    const rows = await parkedEventsByPayload(trx, PROVIDER, ['event', 'transaction_id'], transactionId);
    const parked = rows
      .map((row) => ({ row, event: (row.payload as RevenuecatWebhookBody).event }))
      .sort((a, b) => (a.event.event_timestamp_ms ?? 0) - (b.event.event_timestamp_ms ?? 0));
    for (const { row, event } of parked) {
      const result = await applyToPurchase(trx, event, transactionId);
      await settleEvent(trx, {
        provider: PROVIDER,
        eventId: row.event_id,
        status: result.status,
        note: `${result.note} (after the purchase arrived)`,
        purchaseId: result.purchaseId,
      });
    }
  }

  /** NON_RENEWING_PURCHASE, INITIAL_PURCHASE, RENEWAL: a completed purchase and its grant, once per transaction. */
  async function purchase(trx: Executor, event: RevenuecatEvent): Promise<Handled> {
    const transactionId = present(event.transaction_id);
    const productId = present(event.product_id);
    const userId = resolveUserId(event);
    if (!transactionId || !productId || !userId) {
      return handled('ignored', 'transaction_id, product_id or app_user_id is missing');
    }
    const pkg = await findPackageByProductId(trx, productId);
    if (!pkg) return handled('ignored', `product ${productId} is not mapped to a credit package`);

    await lockProviderRef(trx, PROVIDER, transactionId);
    // The store has been paid: the purchase is granted even when the package was deactivated since.
    const row =
      (await findPurchaseByProviderRef(trx, PROVIDER, transactionId, true)) ??
      (await insertPurchase(trx, {
        id: newId('pur'),
        userId,
        pkg,
        provider: PROVIDER,
        providerRef: transactionId,
        status: 'completed',
      }));
    const granted = await ledger.grant(
      {
        userId: row.user_id,
        amount: row.credits,
        source: PROVIDER,
        purchaseId: row.id,
        idempotencyKey: `revenuecat:grant:${transactionId}`,
        reason: `RevenueCat purchase of ${pkg.name}`,
        metadata: {
          eventId: event.id,
          eventType: event.type,
          transactionId,
          productId,
          packageId: row.package_id,
          store: event.store ?? null,
          environment: event.environment ?? null,
          storePrice: {
            priceUsd: event.price ?? null,
            priceInPurchasedCurrency: event.price_in_purchased_currency ?? null,
            currency: event.currency ?? null,
          },
        },
        expiresAt: expiryFor(row.credit_expiry_days),
      },
      trx,
    );
    if (granted.replayed)
      return handled('ignored', `transaction ${transactionId} was already granted`, row.id);
    await replayParked(trx, transactionId);
    return handled('processed', `granted ${row.credits} credits to ${row.user_id}`, row.id);
  }

  async function apply(trx: Executor, event: RevenuecatEvent): Promise<Handled> {
    if (event.environment === 'SANDBOX' && !opts.allowSandbox) return handled('ignored', 'sandbox');
    if (GRANT_TYPES.has(event.type)) return purchase(trx, event);
    if (event.type === 'CANCELLATION' && event.cancel_reason !== REFUND_REASON) {
      return handled('ignored', `cancellation (${event.cancel_reason ?? 'no reason'}): no credit change`);
    }
    if (event.type === 'CANCELLATION' || event.type === 'REFUND_REVERSED') {
      const transactionId = present(event.transaction_id);
      if (!transactionId) return handled('ignored', 'transaction_id is missing');
      await lockProviderRef(trx, PROVIDER, transactionId);
      return applyToPurchase(trx, event, transactionId);
    }
    return handled('ignored', NO_CREDIT_EFFECT[event.type] ?? `${event.type}: no credit effect`);
  }

  return {
    /** Stores the event once by id and applies it, in one transaction; a stored id does nothing again. */
    async handle(body: RevenuecatWebhookBody): Promise<RevenuecatDeliveryResult> {
      const { event } = body;
      return db.transaction().execute(async (trx) => {
        const fresh = await claimEvent(trx, {
          provider: PROVIDER,
          eventId: event.id,
          type: event.type,
          payload: body,
        });
        if (!fresh) {
          const note = 'event already received';
          return { eventId: event.id, type: event.type, outcome: 'duplicate', note, purchaseId: null };
        }
        const result = await apply(trx, event);
        await settleEvent(trx, { provider: PROVIDER, eventId: event.id, ...result });
        const { status, note, purchaseId } = result;
        return { eventId: event.id, type: event.type, outcome: status, note, purchaseId };
      });
    },
  };
}
export type RevenuecatWebhookService = ReturnType<typeof createRevenuecatWebhookService>;
