import type { Config } from '../../../config.ts';
import type { Db } from '../../../db/database.ts';
import { findPurchase, findPurchaseByProviderRef, type Purchase, toPurchase } from '../../purchases/index.ts';
import { unavailable } from '../../../errors.ts';
import type { ProviderInbox } from '../inbox/provider-inbox.service.ts';

/** A request to RevenueCat that has not answered by then is failed (the sync answers 503). */
const REVENUECAT_TIMEOUT_MS = 10_000;

type Obj = Record<string, unknown>;

/** One item of `subscriber.non_subscriptions[productId]` in RevenueCat's `GET /v1/subscribers/{app_user_id}`. */
interface NonSubscription {
  id?: string;
  store_transaction_id?: string;
  purchase_date?: string;
  store?: string;
  is_sandbox?: boolean;
}

export interface SyncResult {
  /** Purchases granted by this sync: the webhook had missed them. */
  granted: Purchase[];
  /** Transactions granted before (by the webhook or an earlier sync). */
  alreadyGranted: number;
  /** Transactions that grant nothing (sandbox while not allowed, no transaction id, a failed handler). */
  ignored: number;
  /** Transactions of products no package maps yet: stored as parked, granted when a package maps them. */
  parked: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * RevenueCat purchase sync: reads the user's one-time purchases from RevenueCat's REST API and feeds each one
 * through the inbox as a NON_RENEWING_PURCHASE (event id `sync:<store_transaction_id>`), so it meets the same
 * handler, lock and grant key (`revenuecat:grant:<transaction>`) as the webhook: the two grant once between them.
 */
export function createRevenuecatSync(db: Db, config: Config['revenuecat'], inbox: ProviderInbox) {
  async function fetchSubscriber(userId: string): Promise<Obj | undefined> {
    const url = `${config.apiUrl}/v1/subscribers/${encodeURIComponent(userId)}`;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { authorization: `Bearer ${config.apiKey}`, accept: 'application/json' },
        signal: AbortSignal.timeout(REVENUECAT_TIMEOUT_MS),
      });
    } catch (err) {
      const error = unavailable('revenuecat.unreachable');
      error.cause = err;
      throw error;
    }
    if (res.status === 404) return undefined;
    if (!res.ok) {
      throw unavailable('revenuecat.http_error', { status: res.status });
    }
    const body = (await res.json().catch(() => null)) as { subscriber?: unknown } | null;
    if (!body || typeof body.subscriber !== 'object' || body.subscriber === null) {
      throw unavailable('revenuecat.no_subscriber');
    }
    return body.subscriber as Obj;
  }

  return {
    /** Grants every one-time purchase of the user that RevenueCat knows and the service has not granted. */
    async sync(userId: string): Promise<SyncResult> {
      if (!config.apiKey) throw unavailable('revenuecat.sync_not_configured');
      const subscriber = await fetchSubscriber(userId);
      const result: SyncResult = { granted: [], alreadyGranted: 0, ignored: 0, parked: 0 };
      const byProduct = (subscriber?.non_subscriptions ?? {}) as Record<
        string,
        NonSubscription[] | undefined
      >;
      const items = Object.entries(byProduct).flatMap(([productId, list]) =>
        (Array.isArray(list) ? list : []).map((item) => ({ productId, item })),
      );
      // Oldest first, as the webhook would have delivered them.
      const time = (i: NonSubscription) => Date.parse(i.purchase_date ?? '') || 0;
      items.sort((a, b) => time(a.item) - time(b.item));
      for (const { productId, item } of items) {
        const transactionId = str(item.store_transaction_id);
        if (!transactionId) {
          result.ignored++;
          continue;
        }
        const purchasedAt = Date.parse(item.purchase_date ?? '');
        const eventId = `sync:${transactionId}`;
        const r = await inbox.receive({
          provider: 'revenuecat',
          eventId,
          type: 'NON_RENEWING_PURCHASE',
          source: 'sync',
          payload: {
            api_version: '1.0',
            source: 'sync',
            event: {
              id: eventId,
              type: 'NON_RENEWING_PURCHASE',
              app_user_id: userId,
              original_app_user_id: userId,
              aliases: [userId],
              product_id: productId,
              transaction_id: transactionId,
              original_transaction_id: transactionId,
              store: item.store ?? null,
              environment: item.is_sandbox ? 'SANDBOX' : 'PRODUCTION',
              purchased_at_ms: Number.isNaN(purchasedAt) ? null : purchasedAt,
              event_timestamp_ms: Number.isNaN(purchasedAt) ? null : purchasedAt,
              revenuecat_purchase_id: item.id ?? null,
            },
          },
        });
        if (!r.duplicate && r.status === 'processed' && r.purchaseId) {
          const row = await findPurchase(db, r.purchaseId);
          if (row) result.granted.push(toPurchase(row));
        } else if (await findPurchaseByProviderRef(db, 'revenuecat', transactionId)) {
          result.alreadyGranted++;
        } else if (r.status === 'parked') {
          result.parked++;
        } else {
          result.ignored++;
        }
      }
      return result;
    },
  };
}

export type RevenuecatSync = ReturnType<typeof createRevenuecatSync>;
