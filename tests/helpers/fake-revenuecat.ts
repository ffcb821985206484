import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One item of `subscriber.non_subscriptions[productId]`, as RevenueCat's API documents it. */
export interface RcNonSubscription {
  id: string;
  store_transaction_id: string;
  purchase_date: string;
  original_purchase_date?: string;
  store: string;
  is_sandbox: boolean;
}

export interface FakeRevenuecat {
  /** Base URL for REVENUECAT_API_URL. */
  url: string;
  apiKey: string;
  requests: { method: string; path: string; headers: IncomingHttpHeaders }[];
  /** Adds a one-time purchase of `productId` to the subscriber `userId`. */
  addPurchase(
    userId: string,
    productId: string,
    item: Partial<RcNonSubscription> & { store_transaction_id: string },
  ): void;
  /** Answer the next `times` requests with this HTTP status. */
  fail(status: number, times?: number): void;
  close(): Promise<void>;
}

/**
 * A local server answering `GET /v1/subscribers/{app_user_id}` the way RevenueCat's REST API v1 does: the
 * subscriber object with `non_subscriptions` keyed by product id (a subscriber it does not know yet is
 * created empty, as RevenueCat does). Requires `Authorization: Bearer <apiKey>`.
 */
export async function startFakeRevenuecat(apiKey = 'sk_rc_test_secret'): Promise<FakeRevenuecat> {
  const subscribers = new Map<string, Record<string, RcNonSubscription[]>>();
  const requests: FakeRevenuecat['requests'] = [];
  let failure: { status: number; times: number } | null = null;
  let n = 0;

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests.push({ method: req.method ?? 'GET', path, headers: req.headers });
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (failure && failure.times > 0) {
      failure.times--;
      return send(failure.status, { code: 7225, message: 'Internal server error (fake told to fail)' });
    }
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      return send(401, { code: 7225, message: 'Invalid API Key.' });
    }
    const match = /^\/v1\/subscribers\/([^/]+)$/.exec(path);
    if (req.method !== 'GET' || !match) return send(404, { code: 7259, message: 'Not found' });
    const userId = decodeURIComponent(match[1] ?? '');
    const nonSubscriptions = subscribers.get(userId) ?? {};
    const now = new Date().toISOString();
    return send(200, {
      request_date: now,
      request_date_ms: Date.now(),
      subscriber: {
        entitlements: {},
        first_seen: now,
        last_seen: now,
        management_url: null,
        non_subscriptions: nonSubscriptions,
        original_app_user_id: userId,
        original_application_version: null,
        original_purchase_date: null,
        other_purchases: {},
        subscriptions: {},
      },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    requests,
    addPurchase(userId, productId, item) {
      const products = subscribers.get(userId) ?? {};
      const date = new Date(Date.now() - 60_000 + n++).toISOString();
      const list = products[productId] ?? [];
      list.push({
        id: `rc_${item.store_transaction_id}`,
        purchase_date: date,
        original_purchase_date: date,
        store: 'app_store',
        is_sandbox: false,
        ...item,
      });
      products[productId] = list;
      subscribers.set(userId, products);
    },
    fail(status, times = Number.POSITIVE_INFINITY) {
      failure = { status, times };
    },
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
