import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

type Obj = Record<string, unknown>;

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The form-encoded body, decoded into nested objects and arrays (`a[b][0]=x` → `{ a: { b: ['x'] } }`). */
  params: Obj;
}

export interface FakeStripe {
  /** Base URL for STRIPE_API_URL. */
  url: string;
  requests: RecordedRequest[];
  /** Checkout Sessions created, by id (a test may change one, e.g. mark it paid, as Stripe would). */
  sessions: Map<string, Obj>;
  /**
   * Stripe's event log, as `GET /v1/events` serves it (newest first by `created`, then the later pushed; filtered
   * by `types[]` and `created[gte]`; paged by `limit` and `starting_after`, with `has_more`). Push the events a
   * test sends, or misses: the webhook does not read it.
   */
  events: Obj[];
  /** Answer the next `times` API requests with this HTTP status and a Stripe error body. */
  fail(status: number, times?: number): void;
  /** While on, requests are recorded and never answered (a hung Stripe: the connection stays open). */
  hang(on?: boolean): void;
  /** Stops listening: the SDK then gets connection errors, like Stripe being unreachable. */
  close(): Promise<void>;
}

const rid = (prefix: string) => `${prefix}_test_${randomBytes(12).toString('hex')}`;

/** Decodes Stripe's form encoding (the SDK's `qs`-style brackets) into nested values. */
export function decodeForm(body: string): Obj {
  const root: Obj = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const path = key.split(/\[|\]\[|\]/).filter((s) => s !== '');
    let node: Obj = root;
    path.forEach((segment, i) => {
      if (i === path.length - 1) {
        node[segment] = value;
        return;
      }
      node[segment] ??= /^\d+$/.test(path[i + 1] ?? '') ? [] : {};
      node = node[segment] as Obj;
    });
  }
  return root;
}

/** A local HTTP server that answers the Checkout Session calls the way Stripe's API does. */
export async function startFakeStripe(): Promise<FakeStripe> {
  const requests: RecordedRequest[] = [];
  const sessions = new Map<string, Obj>();
  const events: Obj[] = [];
  const replays = new Map<string, { status: number; body: string }>();
  let failure: { status: number; times: number } | null = null;
  let hanging = false;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const [path = '/', query = ''] = (req.url ?? '/').split('?');
      const request: RecordedRequest = {
        method: req.method ?? 'GET',
        path,
        headers: req.headers,
        // GET parameters come in the query string, in the same encoding as a POST body.
        params: decodeForm(req.method === 'GET' ? query : raw),
      };
      requests.push(request);
      if (hanging) return;
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        const text = typeof body === 'string' ? body : JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'request-id': rid('req'), ...headers });
        res.end(text);
      };

      if (failure && failure.times > 0) {
        failure.times--;
        return send(failure.status, {
          error: { type: 'api_error', message: 'An unknown error occurred (fake Stripe told to fail)' },
        });
      }
      const key = req.headers['idempotency-key'];
      const replay = typeof key === 'string' ? replays.get(key) : undefined;
      if (replay) return send(replay.status, replay.body, { 'idempotent-replayed': 'true' });

      if (request.method === 'POST' && path === '/v1/checkout/sessions') {
        const p = request.params;
        const id = rid('cs');
        const item = ((p.line_items as Obj[] | undefined) ?? [])[0] ?? {};
        const priceData = item.price_data as Obj | undefined;
        const unitAmount = priceData ? Number(priceData.unit_amount) : null;
        const session: Obj = {
          id,
          object: 'checkout.session',
          mode: p.mode,
          status: 'open',
          payment_status: 'unpaid',
          client_reference_id: p.client_reference_id ?? null,
          metadata: p.metadata ?? {},
          success_url: p.success_url ?? null,
          cancel_url: p.cancel_url ?? null,
          amount_subtotal: unitAmount,
          amount_total: unitAmount,
          currency: priceData?.currency ?? null,
          payment_intent: null,
          customer: null,
          livemode: false,
          created: Math.floor(Date.now() / 1000),
          expires_at: Math.floor(Date.now() / 1000) + 86_400,
          url: `https://checkout.stripe.com/c/pay/${id}`,
        };
        sessions.set(id, session);
        const body = JSON.stringify(session);
        if (typeof key === 'string') replays.set(key, { status: 200, body });
        return send(200, body);
      }
      const sessionPath = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(path);
      if (request.method === 'GET' && sessionPath) {
        const session = sessions.get(decodeURIComponent(sessionPath[1] ?? ''));
        if (!session) {
          return send(404, {
            error: {
              type: 'invalid_request_error',
              code: 'resource_missing',
              message: `No such checkout.session: '${sessionPath[1]}'`,
              param: 'session',
            },
          });
        }
        return send(200, session);
      }

      if (request.method === 'GET' && path === '/v1/events') {
        const p = request.params;
        const types = p.types ? (Object.values(p.types as Obj) as string[]) : undefined;
        const gte = (p.created as Obj | undefined)?.gte;
        const limit = Math.min(Math.max(Number(p.limit ?? 10), 1), 100);
        const ordered = events
          .map((e, i) => ({ e, i }))
          .filter(({ e }) => !types || types.includes(e.type as string))
          .filter(({ e }) => gte === undefined || (e.created as number) >= Number(gte))
          .sort((a, b) => (b.e.created as number) - (a.e.created as number) || b.i - a.i)
          .map(({ e }) => e);
        let start = 0;
        if (p.starting_after) {
          const at = ordered.findIndex((e) => e.id === p.starting_after);
          if (at < 0) {
            return send(400, {
              error: { type: 'invalid_request_error', message: `No such event: '${p.starting_after}'` },
            });
          }
          start = at + 1;
        }
        const data = ordered.slice(start, start + limit);
        return send(200, {
          object: 'list',
          url: '/v1/events',
          has_more: start + limit < ordered.length,
          data,
        });
      }

      return send(404, {
        error: {
          type: 'invalid_request_error',
          message: `Unrecognized request URL (${request.method}: ${path})`,
        },
      });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sessions,
    events,
    fail(status, times = Number.POSITIVE_INFINITY) {
      failure = { status, times };
    },
    hang(on = true) {
      hanging = on;
    },
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export const WEBHOOK_SECRET = 'whsec_test_credits_service_secret';

/** The environment that points the app's Stripe SDK at the fake server. */
export function stripeEnv(fake: FakeStripe): Record<string, string> {
  return {
    STRIPE_SECRET_KEY: 'sk_test_fake_key',
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STRIPE_API_URL: fake.url,
    CHECKOUT_SUCCESS_URL: 'https://app.example.test/credits/done?session_id={CHECKOUT_SESSION_ID}',
    CHECKOUT_CANCEL_URL: 'https://app.example.test/credits',
    CHECKOUT_ALLOWED_ORIGINS: 'https://app.example.test, https://admin.example.test',
  };
}

/** A v1 snapshot event as Stripe posts it to a webhook endpoint. */
export function stripeEvent(type: string, object: Obj, extra: { id?: string; previous?: Obj } = {}): Obj {
  return {
    id: extra.id ?? rid('evt'),
    object: 'event',
    api_version: '2025-09-30.clover',
    created: Math.floor(Date.now() / 1000),
    data: { object, ...(extra.previous ? { previous_attributes: extra.previous } : {}) },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
}

/** A Checkout Session as a `checkout.session.*` event carries it, built from the one the fake created. */
export function sessionObject(session: Obj, changes: Obj = {}): Obj {
  return {
    ...session,
    status: 'complete',
    payment_status: 'paid',
    payment_intent: rid('pi'),
    customer_details: { email: 'buyer@example.test', name: 'Test Buyer' },
    url: null,
    ...changes,
  };
}

/** A Charge as `charge.refunded` carries it. */
export function chargeObject(fields: {
  paymentIntent: string;
  amount: number;
  amountRefunded: number;
  currency?: string;
  metadata?: Obj;
  id?: string;
}): Obj {
  return {
    id: fields.id ?? rid('ch'),
    object: 'charge',
    amount: fields.amount,
    amount_captured: fields.amount,
    amount_refunded: fields.amountRefunded,
    captured: true,
    currency: fields.currency ?? 'usd',
    metadata: fields.metadata ?? {},
    paid: true,
    payment_intent: fields.paymentIntent,
    refunded: fields.amountRefunded >= fields.amount,
    status: 'succeeded',
  };
}

/** A Dispute as `charge.dispute.*` carries it. */
export function disputeObject(fields: {
  id?: string;
  paymentIntent: string;
  charge?: string;
  amount: number;
  status: string;
}): Obj {
  return {
    id: fields.id ?? rid('dp'),
    object: 'dispute',
    amount: fields.amount,
    charge: fields.charge ?? rid('ch'),
    currency: 'usd',
    is_charge_refundable: false,
    metadata: {},
    payment_intent: fields.paymentIntent,
    reason: 'fraudulent',
    status: fields.status,
  };
}

/** The body exactly as Stripe sends it (pretty-printed JSON) and its Stripe-Signature header. */
export function signedDelivery(
  event: Obj,
  opts: { secret?: string; timestamp?: number } = {},
): { payload: string; signature: string } {
  const payload = JSON.stringify(event, null, 2);
  const signature = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: opts.secret ?? WEBHOOK_SECRET,
    ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}),
  });
  return { payload, signature };
}
