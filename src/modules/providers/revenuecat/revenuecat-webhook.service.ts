import { type Static, Type } from '@sinclair/typebox';
import { findPackageByProductId, lockProductMapping } from '../../catalog/index.ts';
import {
  findPurchaseByProviderRef,
  lockProviderRef,
  MAX_REFUND_CYCLES,
  type PurchaseLifecycle,
} from '../../purchases/index.ts';
import { badRequest } from '../../../errors.ts';
import type {
  InboxContext,
  Outcome,
  ProviderHandler,
  ProviderInbox,
} from '../inbox/provider-inbox.service.ts';

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
export type RevenuecatEvent = RevenuecatWebhookBody['event'];

export const RevenuecatDeliveryResult = Type.Object({
  eventId: Type.String(),
  type: Type.String(),
  outcome: Type.Union(
    ['processed', 'ignored', 'parked', 'failed', 'duplicate'].map((o) => Type.Literal(o)),
    { description: 'duplicate: the event id was stored before, nothing was done again' },
  ),
  note: Type.Union([Type.String(), Type.Null()]),
  purchaseId: Type.Union([Type.String(), Type.Null()]),
});
export type RevenuecatDeliveryResult = Static<typeof RevenuecatDeliveryResult>;

const PROVIDER = 'revenuecat' as const;
const ANONYMOUS_PREFIX = '$RCAnonymousID:';
const GRANT_TYPES = new Set(['NON_RENEWING_PURCHASE', 'INITIAL_PURCHASE', 'RENEWAL']);
/** RevenueCat's cancel_reason for a refund (App Store support, Play/Amazon/web refunds). */
const REFUND_REASON = 'CUSTOMER_SUPPORT';
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

/** Waiting keys (010_provider_event_inbox.sql). */
const transactionKey = (transactionId: string) => `revenuecat:transaction:${transactionId}`;
const refundKey = (transactionId: string) => `revenuecat:refund:${transactionId}`;
export const productKey = (productId: string) => `revenuecat:product:${productId}`;

/** Parses a stored RevenueCat body (the webhook's schema already checked a live one). */
export function parseRevenuecatEvent(payload: unknown): RevenuecatEvent {
  const event = (payload as { event?: unknown } | null)?.event as RevenuecatEvent | undefined;
  if (!event || typeof event.id !== 'string' || typeof event.type !== 'string') {
    throw badRequest('revenuecat.event_invalid');
  }
  return event;
}

/**
 * RevenueCat's rules, as plain functions over a parsed event, run by the inbox inside its transaction.
 * Grants are once per store transaction (`transaction_id`, key `revenuecat:grant:<tx>`), whatever the event
 * ids and whichever way the transaction arrives (webhook, sync, replay); everything on one transaction is
 * serialized by its advisory lock.
 */
export function createRevenuecatHandler(lifecycle: PurchaseLifecycle, opts: { allowSandbox: boolean }) {
  /** An event about a store transaction whose purchase is not known yet waits for it (parked). */
  const waitForPurchase = (transactionId: string): Outcome => ({
    status: 'parked',
    note: `waiting for the purchase of transaction ${transactionId}`,
    waitingFor: transactionKey(transactionId),
  });

  /** A refund (CANCELLATION with CUSTOMER_SUPPORT): takes back the purchase's credits, never below zero. */
  async function refund(ctx: InboxContext, event: RevenuecatEvent, transactionId: string): Promise<Outcome> {
    const purchase = await findPurchaseByProviderRef(ctx.trx, PROVIDER, transactionId, true);
    if (!purchase) return waitForPurchase(transactionId);
    const done = { purchaseId: purchase.id, userId: purchase.user_id };
    if (purchase.status === 'refunded')
      return { status: 'ignored', note: 'purchase already refunded', ...done };
    const result = await lifecycle.refundAll(ctx.trx, purchase, {
      keyBase: `revenuecat:refund:${transactionId}`,
      reason: 'RevenueCat refund',
      metadata: { eventId: event.id, transactionId, cancelReason: REFUND_REASON },
    });
    if (!result) {
      return { status: 'ignored', note: `more than ${MAX_REFUND_CYCLES} refunds: not applied`, ...done };
    }
    // A REFUND_REVERSED that arrived before this refund was waiting for it.
    await ctx.wake([refundKey(transactionId)], 'after the refund it reverses');
    return {
      status: 'processed',
      note: `refund: took back ${result.taken} of ${result.requested} credits`,
      ...done,
    };
  }

  /** REFUND_REVERSED: grants back what the refund took; the purchase is completed again. */
  async function reverseRefund(
    ctx: InboxContext,
    event: RevenuecatEvent,
    transactionId: string,
  ): Promise<Outcome> {
    const purchase = await findPurchaseByProviderRef(ctx.trx, PROVIDER, transactionId, true);
    if (!purchase) return waitForPurchase(transactionId);
    const done = { purchaseId: purchase.id, userId: purchase.user_id };
    if (purchase.status !== 'refunded') {
      // Before the purchase's first refund: the reversal arrived before its refund (RevenueCat does not
      // promise order), so it waits for it. After a refund and its reversal, another one is a repeat.
      if ((await lifecycle.refundCount(ctx.trx, purchase)) === 0) {
        return {
          status: 'parked',
          note: `waiting for the refund of transaction ${transactionId} that it reverses`,
          waitingFor: refundKey(transactionId),
          ...done,
        };
      }
      return { status: 'ignored', note: `nothing to reverse: purchase is ${purchase.status}`, ...done };
    }
    const result = await lifecycle.reverseRefund(ctx.trx, purchase, {
      keyBase: `revenuecat:refund-reversed:${transactionId}`,
      reason: 'RevenueCat refund reversed',
      metadata: { eventId: event.id, transactionId },
    });
    if (!result) {
      return { status: 'ignored', note: `more than ${MAX_REFUND_CYCLES} reversals: not applied`, ...done };
    }
    return { status: 'processed', note: `refund reversed: granted back ${result.granted} credits`, ...done };
  }

  /** NON_RENEWING_PURCHASE, INITIAL_PURCHASE, RENEWAL: a completed purchase and its grant, once per transaction. */
  async function purchase(ctx: InboxContext, event: RevenuecatEvent): Promise<Outcome> {
    const { trx } = ctx;
    const transactionId = present(event.transaction_id);
    const productId = present(event.product_id);
    const userId = resolveUserId(event);
    if (!transactionId || !productId || !userId) {
      return { status: 'ignored', note: 'transaction_id, product_id or app_user_id is missing' };
    }
    // The same lock as saving a mapping of this product (a purchase parked now is seen by that save's wake-up),
    // then the transaction's.
    await lockProductMapping(trx, productId);
    await lockProviderRef(trx, PROVIDER, transactionId);
    // Recorded before: a repeat (whatever the product's mapping is now), answered by the grant key below.
    const existing = await findPurchaseByProviderRef(trx, PROVIDER, transactionId, true);
    const pkg = existing ? undefined : await findPackageByProductId(trx, productId);
    if (!existing && !pkg) {
      return {
        status: 'parked',
        note: `product ${productId} is not mapped to a credit package: granted when a package maps it`,
        waitingFor: productKey(productId),
        userId,
      };
    }
    // The store has been paid: the purchase is granted even when the package was deactivated since.
    const { purchase: row, granted } = await lifecycle.createCompleted(
      trx,
      { existing, userId, pkg, provider: PROVIDER, providerRef: transactionId },
      {
        key: `revenuecat:grant:${transactionId}`,
        reason: `RevenueCat purchase of ${pkg?.name ?? existing?.package_id}`,
        metadata: {
          eventId: event.id,
          eventType: event.type,
          transactionId,
          productId,
          packageId: existing?.package_id ?? pkg?.id,
          store: event.store ?? null,
          environment: event.environment ?? null,
          storePrice: {
            priceUsd: event.price ?? null,
            priceInPurchasedCurrency: event.price_in_purchased_currency ?? null,
            currency: event.currency ?? null,
          },
        },
      },
    );
    const done = { purchaseId: row.id, userId: row.user_id };
    if (granted.replayed) {
      return { status: 'ignored', note: `transaction ${transactionId} was already granted`, ...done };
    }
    // Refunds (and their reversals) that arrived before the purchase, in the order RevenueCat sent them.
    await ctx.wake([transactionKey(transactionId)], 'after the purchase arrived');
    return { status: 'processed', note: `granted ${row.credits} credits to ${row.user_id}`, ...done };
  }

  const handler: ProviderHandler<RevenuecatEvent> = {
    parse: parseRevenuecatEvent,
    compare: (a, b) => (a.event_timestamp_ms ?? 0) - (b.event_timestamp_ms ?? 0),
    async handle(ctx, event) {
      if (event.environment === 'SANDBOX' && !opts.allowSandbox)
        return { status: 'ignored', note: 'sandbox' };
      if (GRANT_TYPES.has(event.type)) return purchase(ctx, event);
      if (event.type === 'CANCELLATION' && event.cancel_reason !== REFUND_REASON) {
        return {
          status: 'ignored',
          note: `cancellation (${event.cancel_reason ?? 'no reason'}): no credit change`,
        };
      }
      if (event.type === 'CANCELLATION' || event.type === 'REFUND_REVERSED') {
        const transactionId = present(event.transaction_id);
        if (!transactionId) return { status: 'ignored', note: 'transaction_id is missing' };
        await lockProviderRef(ctx.trx, PROVIDER, transactionId);
        return event.type === 'REFUND_REVERSED'
          ? reverseRefund(ctx, event, transactionId)
          : refund(ctx, event, transactionId);
      }
      return { status: 'ignored', note: NO_CREDIT_EFFECT[event.type] ?? `${event.type}: no credit effect` };
    },
  };
  return handler;
}

/** POST /webhooks/revenuecat: the inbox stores each delivery once by event id and runs the handler. */
export function createRevenuecatWebhookService(inbox: ProviderInbox) {
  return {
    /** Stores the event once by id and applies it, in one transaction; a stored id does nothing again. */
    async handle(body: RevenuecatWebhookBody): Promise<RevenuecatDeliveryResult> {
      const { event } = body;
      const r = await inbox.receive({
        provider: PROVIDER,
        eventId: event.id,
        type: event.type,
        payload: body,
        source: 'webhook',
      });
      return {
        eventId: event.id,
        type: event.type,
        outcome: r.duplicate ? 'duplicate' : r.status,
        note: r.note,
        purchaseId: r.duplicate ? null : r.purchaseId,
      };
    },
  };
}
export type RevenuecatWebhookService = ReturnType<typeof createRevenuecatWebhookService>;
