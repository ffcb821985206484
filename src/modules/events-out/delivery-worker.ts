import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/database.ts';
import {
  type AttemptResult,
  type ClaimedDelivery,
  claimDeliveries,
  pruneEvents,
  RETENTION_BATCH,
  recordAttempts,
} from './events-out.repository.ts';
import { eventId, toEvent } from './event-log.service.ts';
import { signWebhook } from './signing.ts';
import { guardedLookup, hostOf, isPrivateAddress } from './url-guard.ts';

export interface DeliveryWorkerOptions {
  /** How long an idle worker waits before it looks again; 0 never starts it. */
  pollIntervalMs: number;
  /** Waits before the retries; an attempt more than entries, then the delivery fails. */
  retryScheduleMs: readonly number[];
  timeoutMs: number;
  /** Attempts in flight at once in this process. */
  concurrency: number;
  /** Attempts in flight at once to one endpoint, in this process (at most `concurrency`; unset: `concurrency`). */
  endpointConcurrency?: number;
  allowPrivateUrls: boolean;
  httpsOnly: boolean;
  log: FastifyBaseLogger;
  /** How many requests the process is serving now: the worker yields to them when the event loop is saturated. */
  requestsInFlight?: () => number;
  /** Spending operations queued for the database (the ledger's group commit): the worker yields to them too. */
  spendingBacklog?: () => number;
  /** Each attempt's outcome: metrics. */
  onAttempt?: (outcome: 'delivered' | 'retry' | 'failed') => void;
  /** EVENTS_RETENTION_DAYS: older events and deliveries are removed by the worker, in small batches. */
  retentionDays?: number;
}

/** Event loop utilization from which the worker counts the process as busy serving requests. */
const BUSY_UTILIZATION = 0.6;
/** The pause between passes while busy: a quarter of the slots every 250 ms (64/s at the default 64). */
const BUSY_PAUSE_MS = 250;
/** How long a stop waits for attempts in flight before it aborts them. */
const STOP_GRACE_MS = 3_000;
/** How often the worker removes events and deliveries past the retention. */
const RETENTION_EVERY_MS = 60_000;
/** Retention steps in a row, at most, before the worker waits for the next round (each step is one batch). */
const RETENTION_STEPS = 20;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

interface Response {
  statusCode: number | null;
  error: string | null;
}

/**
 * POSTs the body and resolves with the status code once the response head arrives (any 2xx = delivered),
 * or an error. The whole attempt (DNS, connect, TLS, response head) has `timeoutMs`. Redirects are not
 * followed. The socket connects only to addresses the policy allows, checked as they are resolved.
 */
function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  opts: DeliveryWorkerOptions,
  agents: { http: http.Agent; https: https.Agent },
  signal: AbortSignal,
) {
  return new Promise<Response>((resolve) => {
    const secure = url.protocol === 'https:';
    const req = (secure ? https : http).request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        signal: AbortSignal.any([signal, AbortSignal.timeout(opts.timeoutMs)]),
        agent: secure ? agents.https : agents.http,
      },
      (res) => {
        res.resume(); // the receiver's body is not kept
        resolve({ statusCode: res.statusCode ?? null, error: null });
        res.on('error', () => {});
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (signal.aborted) return resolve({ statusCode: null, error: 'aborted: the worker was stopping' });
      const timedOut = err.name === 'AbortError' || err.name === 'TimeoutError';
      resolve({
        statusCode: null,
        error: timedOut
          ? `no response within ${opts.timeoutMs} ms`
          : `${err.code ?? err.name}: ${err.message}`.slice(0, 300),
      });
    });
    req.end(body);
  });
}

/** Signs and sends one claimed delivery; answers its outcome (not yet recorded). */
function createSender(opts: DeliveryWorkerOptions) {
  // Keep-alive: a busy endpoint gets a few reused connections, not one connection (and TLS handshake) per
  // event. New connections resolve through the guarded lookup, so they reach only allowed addresses.
  const agentOptions = {
    keepAlive: true,
    maxSockets: opts.concurrency,
    maxFreeSockets: opts.concurrency,
    timeout: 60_000,
    lookup: guardedLookup(opts.allowPrivateUrls) as never,
  };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };

  /** The wait before the next attempt after `attempts` failed ones (±10%), or null when none is left. */
  function retryIn(attempts: number): number | null {
    const wait = opts.retryScheduleMs[attempts - 1];
    if (wait === undefined) return null;
    return Math.round(wait * (0.9 + Math.random() * 0.2));
  }

  async function send(d: ClaimedDelivery, signal: AbortSignal): Promise<Response> {
    const event = toEvent(d.event);
    const body = JSON.stringify(event);
    const timestamp = Math.floor(Date.now() / 1000);
    const secrets = [d.secret];
    if (
      d.previous_secret &&
      d.previous_secret_until &&
      new Date(d.previous_secret_until).getTime() > Date.now()
    ) {
      secrets.push(d.previous_secret);
    }
    const url = new URL(d.url);
    const host = hostOf(url);
    if (opts.httpsOnly && url.protocol !== 'https:') {
      return { statusCode: null, error: 'refused: the URL is not https' };
    }
    if (!opts.allowPrivateUrls && isIP(host) && isPrivateAddress(host)) {
      return { statusCode: null, error: `refused: ${host} is a private or loopback address` };
    }
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'credits-service-webhooks/1',
      'webhook-id': eventId(d.event.id),
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(secrets, eventId(d.event.id), timestamp, body),
    };
    return post(url, body, headers, opts, agents, signal);
  }

  return {
    async attempt(d: ClaimedDelivery, signal: AbortSignal): Promise<AttemptResult> {
      const response = await send(d, signal);
      const delivered =
        response.statusCode !== null && response.statusCode >= 200 && response.statusCode < 300;
      const retryInMs = delivered ? null : retryIn(d.attempts);
      opts.onAttempt?.(delivered ? 'delivered' : retryInMs === null ? 'failed' : 'retry');
      return {
        id: d.id,
        attempts: d.attempts,
        delivered,
        statusCode: response.statusCode,
        error: delivered ? null : (response.error ?? `HTTP ${response.statusCode}`),
        retryInMs,
      };
    },
    destroy() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/** Removes events and deliveries past EVENTS_RETENTION_DAYS, a small batch per statement. */
function createRetention(db: Db, opts: DeliveryWorkerOptions) {
  /** Retention steps until one removes less than a batch (or RETENTION_STEPS); rows removed. */
  async function prune(): Promise<{ deliveries: number; events: number }> {
    const total = { deliveries: 0, events: 0 };
    if (!opts.retentionDays) return total;
    for (let step = 0; step < RETENTION_STEPS; step++) {
      const removed = await pruneEvents(db, opts.retentionDays);
      total.deliveries += removed.deliveries;
      total.events += removed.events;
      if (removed.deliveries < RETENTION_BATCH && removed.events < RETENTION_BATCH) break;
    }
    return total;
  }

  /** Until aborted: a round of retention every RETENTION_EVERY_MS. */
  async function loop(signal: AbortSignal) {
    while (!signal.aborted) {
      try {
        await prune();
      } catch (err) {
        opts.log.warn({ err }, 'removing old events failed');
      }
      await sleep(RETENTION_EVERY_MS, signal);
    }
  }
  return { prune, loop };
}

/**
 * Writes outcomes as they come, one statement at a time: an outcome that arrives while a write is under way
 * goes in the next one, with every other that arrived meanwhile. Each outcome waits only for the write that
 * carries it, so a process killed mid-pass resends only what was not yet written; under load, 64 answers
 * cost a few statements instead of 64 commits. Resolves once its outcome is written (or the write failed).
 */
function createOutcomeWriter(db: Db, log: FastifyBaseLogger) {
  let next: { results: AttemptResult[]; written: Promise<void>; done: () => void } | null = null;
  let writing = false;

  async function writeAll() {
    writing = true;
    while (next) {
      const batch = next;
      next = null;
      try {
        await recordAttempts(db, batch.results);
      } catch (err) {
        // Not recorded: their leases run out and the deliveries are attempted again (at least once).
        log.warn(
          { err, deliveries: batch.results.map((r) => r.id) },
          'webhook attempts could not be recorded',
        );
      }
      batch.done();
    }
    writing = false;
  }

  return (result: AttemptResult): Promise<void> => {
    if (!next) {
      let done = () => {};
      const written = new Promise<void>((resolve) => {
        done = resolve;
      });
      next = { results: [], written, done };
    }
    next.results.push(result);
    const { written } = next;
    if (!writing) void writeAll();
    return written;
  };
}

/** The attempts in flight, and a wait for slots to free. */
function createSlots() {
  const inFlight = new Set<Promise<void>>();
  let slotFreed: (() => void) | null = null;
  return {
    get size() {
      return inFlight.size;
    },
    /** Tracks an attempt until it settles. */
    add(attempt: Promise<void>) {
      const p: Promise<void> = attempt.finally(() => {
        inFlight.delete(p);
        slotFreed?.();
      });
      inFlight.add(p);
    },
    /** Resolves once every attempt now in flight has settled. */
    all: () => Promise.all(inFlight),
    /** Resolves once at most `n` attempts are in flight (or on abort, or after `ms` when given). */
    atMost(n: number, signal: AbortSignal, ms?: number) {
      return new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | undefined;
        const finish = () => {
          clearTimeout(timer);
          slotFreed = null;
          signal.removeEventListener('abort', finish);
          resolve();
        };
        const check = () => {
          if (inFlight.size <= n || signal.aborted) finish();
        };
        slotFreed = check;
        signal.addEventListener('abort', finish, { once: true });
        if (ms !== undefined) timer = setTimeout(finish, ms);
        check();
      });
    },
  };
}

/**
 * The delivery worker: one per process (replica). Deliveries are written with their events (in the
 * transaction of the change); the worker claims due ones with a lease (FOR UPDATE SKIP LOCKED: replicas never
 * take the same one at once), signs and sends them, and records each outcome as soon as it comes (with those
 * that came while the previous write was under way), with the next attempt's time from the retry schedule: a
 * process killed mid-pass resends only the deliveries whose answers it had not recorded. It also removes events and deliveries past EVENTS_RETENTION_DAYS.
 */
export function createDeliveryWorker(db: Db, opts: DeliveryWorkerOptions) {
  // Longer than any attempt can take (it is aborted at timeoutMs and starts right after its claim), so a
  // lease never runs out while its attempt is still being sent.
  const leaseMs = opts.timeoutMs + 5_000;
  let sender = createSender(opts);
  let stopping: AbortController | null = null;
  // Aborts the attempts in flight; separate from `stopping` so a stop first lets them finish for a moment.
  let aborting = new AbortController();
  let loops: Promise<void>[] = [];
  const inFlight = createSlots();
  const retention = createRetention(db, opts);
  const perEndpoint = Math.min(opts.endpointConcurrency ?? opts.concurrency, opts.concurrency);
  /** Attempts in flight by endpoint: the claim gives no endpoint more than `perEndpoint` at once. */
  const toEndpoint = new Map<string, number>();

  const record = createOutcomeWriter(db, opts.log);

  /** Sends one delivery and records its outcome as soon as it comes. */
  function launch(d: ClaimedDelivery, signal: AbortSignal) {
    const endpoint = d.endpoint_id;
    toEndpoint.set(endpoint, (toEndpoint.get(endpoint) ?? 0) + 1);
    const attempt = sender
      .attempt(d, signal)
      .then(record)
      .catch((err) => opts.log.warn({ err, delivery: d.id }, 'webhook attempt failed unexpectedly'))
      .finally(() => {
        const left = (toEndpoint.get(endpoint) ?? 1) - 1;
        if (left > 0) toEndpoint.set(endpoint, left);
        else toEndpoint.delete(endpoint);
      });
    inFlight.add(attempt);
  }

  /** True when some endpoint has every attempt it may have in flight. */
  const anEndpointFull = () => [...toEndpoint.values()].some((n) => n >= perEndpoint);

  /** One pass: claims the due deliveries the free slots can take. True when there may be more to do. */
  async function pass(limit = opts.concurrency): Promise<boolean> {
    const free = limit - inFlight.size;
    if (free <= 0) return true;
    const claimed = await claimDeliveries(db, free, leaseMs, false, { perEndpoint, inFlight: toEndpoint });
    for (const d of claimed) launch(d, aborting.signal);
    // Another pass at once only when the slots were filled: deliveries trickling in wait for the next poll
    // and leave in one statement, rather than costing a pass each.
    return claimed.length === free;
  }

  async function run(signal: AbortSignal) {
    let elu = performance.eventLoopUtilization();
    while (!signal.aborted) {
      // Deliveries yield to requests: while this process's event loop is saturated and requests are waiting,
      // or debits queue for the database (every call of the group commit busy), the worker runs a quarter of
      // its attempts and pauses between passes; the backlog waits in the table and drains at full speed once
      // the load eases. Webhooks are asynchronous; debits are not.
      const since = performance.eventLoopUtilization(elu);
      elu = performance.eventLoopUtilization();
      const busy =
        (since.utilization >= BUSY_UTILIZATION && (opts.requestsInFlight?.() ?? 0) > 0) ||
        (opts.spendingBacklog?.() ?? 0) > 0;
      const limit = busy ? Math.max(1, Math.ceil(opts.concurrency / 4)) : opts.concurrency;
      let more = false;
      try {
        more = await pass(limit);
      } catch (err) {
        opts.log.warn({ err }, 'webhook worker pass failed');
      }
      if (signal.aborted) break;
      if (busy) {
        await sleep(Math.min(opts.pollIntervalMs, BUSY_PAUSE_MS), signal);
      } else if (inFlight.size >= limit) {
        // Full: go on when half the slots are free, so each pass claims a batch rather than one delivery.
        await inFlight.atMost(Math.floor(limit / 2), signal);
      } else if (!more && anEndpointFull()) {
        // An endpoint at its cap may have more waiting: go on when half its share could be free again (or at
        // the next poll, for the other endpoints' new deliveries).
        await inFlight.atMost(inFlight.size - Math.ceil(perEndpoint / 2), signal, opts.pollIntervalMs);
      } else if (!more) {
        await sleep(opts.pollIntervalMs, signal);
      }
    }
  }

  return {
    /** Starts the worker (idempotent). */
    start() {
      if (loops.length > 0 || opts.pollIntervalMs <= 0) return;
      stopping = new AbortController();
      loops = [run(stopping.signal), retention.loop(stopping.signal)];
    },
    /**
     * Stops claiming, gives the attempts in flight a moment to end, then aborts the rest (they count as failed
     * attempts and are retried; the receiver may have had them: at least once), and records them all.
     */
    async stop() {
      if (loops.length === 0 || !stopping) return;
      stopping.abort();
      await Promise.all(loops);
      const grace = new AbortController();
      await Promise.race([inFlight.all(), sleep(Math.min(opts.timeoutMs, STOP_GRACE_MS), grace.signal)]);
      grace.abort();
      aborting.abort();
      await inFlight.all();
      aborting = new AbortController();
      sender.destroy();
      sender = createSender(opts);
      loops = [];
      stopping = null;
    },
    /** One pass and the attempts it started, recorded (tests and tools). */
    async runOnce() {
      await pass();
      await inFlight.all();
    },
    /** One round of retention now (tests and tools). */
    prune: retention.prune,
    get running() {
      return loops.length > 0;
    },
  };
}
export type DeliveryWorker = ReturnType<typeof createDeliveryWorker>;
