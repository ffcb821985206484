import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { App } from '../../../src/http/types.ts';
import { asAdmin, cleanup } from '../../helpers/app.ts';

type Obj = Record<string, unknown>;

export interface ReceivedEvent {
  id: string;
  type: string;
  createdAt: string;
  data: Obj;
}

export interface Receiver {
  url: string;
  port: number;
  /** Every request, verified or not, in arrival order. */
  requests: { headers: IncomingHttpHeaders; body: string; verified: boolean; status: number }[];
  /** Verified events, one per webhook-id (the first), as a receiver that dedups would keep them. */
  events: Map<string, ReceivedEvent>;
  /** How many requests with one webhook-id were in flight at the same time, at most (1 = never twice at once). */
  maxConcurrentPerId: number;
  /** Secrets the receiver verifies with (Standard Webhooks: a signature made with any of them is accepted). */
  secrets: string[];
  /** Answers a request: its status. Default 204. */
  respond: (event: ReceivedEvent, attempt: number) => number | Promise<number>;
  close(): Promise<void>;
}

/**
 * A local webhook receiver that verifies every request with the `standardwebhooks` package, as a product
 * would, and keeps each event once by its webhook-id.
 */
export async function startReceiver(port = 0): Promise<Receiver> {
  const attempts = new Map<string, number>();
  const inFlight = new Map<string, number>();
  const receiver: Receiver = {
    url: '',
    port: 0,
    requests: [],
    events: new Map(),
    maxConcurrentPerId: 0,
    secrets: [],
    respond: () => 204,
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id'] ?? '');
      const now = (inFlight.get(id) ?? 0) + 1;
      inFlight.set(id, now);
      receiver.maxConcurrentPerId = Math.max(receiver.maxConcurrentPerId, now);
      let verified = false;
      for (const secret of receiver.secrets) {
        try {
          new Webhook(secret).verify(body, req.headers as Record<string, string>);
          verified = true;
          break;
        } catch {
          // try the next secret
        }
      }
      let status = 400;
      if (verified) {
        const event = JSON.parse(body) as ReceivedEvent;
        const attempt = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, attempt);
        status = await receiver.respond(event, attempt);
        if (status >= 200 && status < 300 && !receiver.events.has(id)) receiver.events.set(id, event);
      }
      receiver.requests.push({ headers: req.headers, body, verified, status });
      inFlight.set(id, (inFlight.get(id) ?? 1) - 1);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hooks`;
  let closed = false;
  receiver.close = async () => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  cleanup(() => receiver.close());
  return receiver;
}

/** Creates an endpoint through the API (as admin); returns it with its secret. */
export async function createEndpoint(app: App, body: Obj) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/webhook-endpoints',
    headers: asAdmin(),
    payload: body,
  });
  if (res.statusCode !== 201) throw new Error(`endpoint create failed: ${res.statusCode} ${res.body}`);
  return res.json().data as { id: string; secret: string; url: string; events: string[] };
}

/** An endpoint for the receiver whose secret the receiver verifies with. */
export async function subscribe(app: App, receiver: Receiver, body: Obj = {}) {
  const endpoint = await createEndpoint(app, { url: receiver.url, events: ['*'], ...body });
  receiver.secrets.push(endpoint.secret);
  return endpoint;
}

/** Polls `check` until it returns true (bounded). */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Fast settings for the delivery worker. */
export const fastWebhooks = {
  WEBHOOK_POLL_INTERVAL_MS: '20',
  WEBHOOK_RETRY_SCHEDULE: '50ms,50ms,50ms,50ms,50ms,50ms,50ms',
};

export async function deliveriesOf(app: App, endpointId: string, query = '') {
  const res = await app.inject({
    method: 'GET',
    url: `/api/v1/webhook-endpoints/${endpointId}/deliveries?limit=100${query}`,
    headers: asAdmin(),
  });
  if (res.statusCode !== 200) throw new Error(`deliveries failed: ${res.statusCode} ${res.body}`);
  return res.json().data.items as {
    id: string;
    eventId: string;
    eventType: string;
    status: string;
    attempts: number;
    lastStatusCode: number | null;
    lastError: string | null;
    nextAttemptAt: string | null;
  }[];
}
