import { sql } from 'kysely';
import type {
  Db,
  DeliveryStatus,
  EventRow,
  Executor,
  WebhookDeliveryRow,
  WebhookEndpointRow,
} from '../../db/database.ts';
import { exactTime, olderThan } from '../../lib/keyset.ts';

// ------------------------------------------------------------------------------------------------ endpoints

export interface EndpointValues {
  url: string;
  description: string | null;
  events: string[];
  lowBalanceThresholds: number[];
}

export async function insertEndpoint(db: Db, id: string, v: EndpointValues, secret: string) {
  return db
    .insertInto('webhook_endpoints')
    .values({
      id,
      url: v.url,
      description: v.description,
      events: v.events,
      low_balance_thresholds: v.lowBalanceThresholds,
      secret,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findEndpoint(ex: Executor, id: string, forUpdate = false) {
  let q = ex.selectFrom('webhook_endpoints').selectAll().where('id', '=', id);
  if (forUpdate) q = q.forUpdate();
  return q.executeTakeFirst();
}

export async function listEndpoints(db: Db, limit: number, after?: { createdAt: string; id: string }) {
  let q = db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .select(exactTime('created_at').as('created_at_exact'))
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (after) q = q.where(olderThan('created_at', 'id', { time: after.createdAt, id: after.id }));
  return q.execute();
}

export async function updateEndpoint(
  db: Db,
  id: string,
  changes: Partial<EndpointValues> & { disabled?: boolean },
): Promise<WebhookEndpointRow | undefined> {
  return db
    .updateTable('webhook_endpoints')
    .set({
      ...(changes.url !== undefined ? { url: changes.url } : {}),
      ...(changes.description !== undefined ? { description: changes.description } : {}),
      ...(changes.events !== undefined ? { events: changes.events } : {}),
      ...(changes.lowBalanceThresholds !== undefined
        ? { low_balance_thresholds: changes.lowBalanceThresholds }
        : {}),
      ...(changes.disabled !== undefined ? { disabled: changes.disabled } : {}),
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/** A new secret; the current one keeps signing beside it until `previousUntil`. */
export async function rotateEndpointSecret(db: Db, id: string, secret: string, previousUntil: Date) {
  return db
    .updateTable('webhook_endpoints')
    .set((eb) => ({
      previous_secret: eb.ref('secret'),
      previous_secret_until: previousUntil,
      secret,
      updated_at: sql<Date>`now()`,
    }))
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/** Deletes the endpoint and its deliveries (the events stay in the log). */
export async function deleteEndpoint(db: Db, id: string) {
  return db.deleteFrom('webhook_endpoints').where('id', '=', id).returningAll().executeTakeFirst();
}

// ------------------------------------------------------------------------------------------------ events

/**
 * The event log, newest first: the view `events` (migrations/020_events_from_ledger.sql), event rows and credit
 * events read from the ledger, one id space. Events older than `retentionDays` have left the log (a credit
 * event's facts stay readable as its ledger entry).
 */
export async function listEvents(db: Db, limit: number, retentionDays: number, beforeId?: number) {
  // The page's ids first, then each event by id (offset 0: a lookup per id). Read in one go, the view's
  // credit events would build the event JSON of every ledger entry before the sort kept a page of them.
  const { rows } = await sql<Pick<EventRow, 'id' | 'type' | 'data' | 'created_at'>>`
    with page as (
      select id from events
      where created_at >= now() - ${retentionDays} * interval '1 day'
        and (${beforeId ?? null}::bigint is null or id < ${beforeId ?? null}::bigint)
      order by id desc
      limit ${limit + 1}
    )
    select v.id, v.type, v.data, v.created_at
    from page cross join lateral (select * from events e where e.id = page.id offset 0) v
    order by v.id desc`.execute(db);
  return rows;
}

export async function findEvent(db: Db, id: number, retentionDays: number) {
  return db
    .selectFrom('events')
    .select(['id', 'type', 'data', 'created_at'])
    .where('id', '=', id)
    .where('created_at', '>=', sql<Date>`now() - ${retentionDays} * interval '1 day'`)
    .executeTakeFirst();
}

/** Rows removed by one retention step, at most, per table: small, so a step never holds much. */
export const RETENTION_BATCH = 500;

/**
 * One retention step: removes up to `batch` deliveries and `batch` event rows older than `days`, oldest
 * first, skipping rows another transaction holds (SKIP LOCKED: it never waits, and nothing a debit locks is
 * touched: credit events are ledger entries, which are never pruned). A delivery still pending that old (its
 * endpoint disabled all that time) goes with its event. Returns how many rows of each went.
 */
export async function pruneEvents(db: Db, days: number, batch = RETENTION_BATCH) {
  // Each looks only at the oldest rows by id (a bounded window), never at the whole table.
  const { rows } = await sql<{ deliveries: number; events: number }>`
    with old_deliveries as (
      delete from webhook_deliveries where ctid = any(array(
        select d.ctid from webhook_deliveries d
        where d.id = any(array(select id from webhook_deliveries order by id limit ${batch * 4}::int))
          and d.created_at < now() - ${days} * interval '1 day'
        limit ${batch}::int for update skip locked))
      returning 1
    ), old_events as (
      delete from event_rows where ctid = any(array(
        select ev.ctid from event_rows ev
        where ev.id = any(array(select id from event_rows order by id limit ${batch * 4}::int))
          and ev.created_at < now() - ${days} * interval '1 day'
        limit ${batch}::int for update skip locked))
      returning 1
    )
    select (select count(*) from old_deliveries)::int as deliveries,
           (select count(*) from old_events)::int as events`.execute(db);
  return rows[0] ?? { deliveries: 0, events: 0 };
}

// ------------------------------------------------------------------------------------------------ deliveries

export type DeliveryListRow = WebhookDeliveryRow & { event_type: string };

/** The type of a delivery's event (a scalar subquery: one look by id, whichever table holds the event). */
const eventTypeOf = sql<string>`(select v.type from events v where v.id = d.event_id)`;

export async function listDeliveries(
  db: Db,
  endpointId: string,
  limit: number,
  opts: { beforeId?: number; status?: DeliveryStatus },
): Promise<DeliveryListRow[]> {
  let q = db
    .selectFrom('webhook_deliveries as d')
    .selectAll('d')
    .select(eventTypeOf.as('event_type'))
    .where('d.endpoint_id', '=', endpointId)
    .orderBy('d.id', 'desc')
    .limit(limit + 1);
  if (opts.beforeId !== undefined) q = q.where('d.id', '<', opts.beforeId);
  if (opts.status) q = q.where('d.status', '=', opts.status);
  return q.execute();
}

export async function findDelivery(ex: Executor, endpointId: string, id: number, forUpdate = false) {
  let q = ex
    .selectFrom('webhook_deliveries as d')
    .selectAll('d')
    .select(eventTypeOf.as('event_type'))
    .where('d.endpoint_id', '=', endpointId)
    .where('d.id', '=', id);
  if (forUpdate) q = q.forUpdate();
  return q.executeTakeFirst();
}

/** Makes a delivery due now (pending again if it had failed or was delivered). */
export async function scheduleDeliveryNow(ex: Executor, id: number) {
  await ex
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', next_attempt_at: sql<Date>`now()` })
    .where('id', '=', id)
    .execute();
}

export interface ClaimedDelivery {
  id: number;
  attempts: number;
  endpoint_id: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: Date | null;
  event: Pick<EventRow, 'id' | 'type' | 'data' | 'created_at'>;
}

type ClaimedRow = {
  id: number;
  attempts: number;
  endpoint_id: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: Date | null;
  event_id: number;
  event_type: string;
  event_data: Record<string, unknown>;
  event_created_at: Date;
};

const toClaimed = (r: ClaimedRow): ClaimedDelivery => ({
  id: r.id,
  attempts: r.attempts,
  endpoint_id: r.endpoint_id,
  url: r.url,
  secret: r.secret,
  previous_secret: r.previous_secret,
  previous_secret_until: r.previous_secret_until,
  event: { id: r.event_id, type: r.event_type, data: r.event_data, created_at: r.event_created_at },
});

/** The per-endpoint cap of a claim: at most `perEndpoint` in flight to one endpoint, counting `inFlight`. */
export interface EndpointLimits {
  perEndpoint: number;
  /** Attempts this process has in flight, by endpoint id. */
  inFlight: ReadonlyMap<string, number>;
}

/**
 * Claims up to `limit` due deliveries of enabled endpoints for `leaseMs`: counts the attempt and moves
 * next_attempt_at to the lease's end, so no other replica takes them until the attempt is recorded or the
 * lease has run out (a replica that died). SKIP LOCKED: replicas claiming at once take different rows.
 * Deliveries are written with their event (migrations/020_events_from_ledger.sql), so a new one is simply due.
 * With `firstOnly`, only deliveries never attempted. With `limits`, no endpoint gets more than its free share
 * (`perEndpoint` less what is in flight to it), and an endpoint with none free is not read at all, so one slow
 * endpoint's backlog never holds up the others'.
 */
export async function claimDeliveries(
  db: Db,
  limit: number,
  leaseMs: number,
  firstOnly = false,
  limits?: EndpointLimits,
): Promise<ClaimedDelivery[]> {
  if (limit <= 0) return [];
  const cap = limits?.perEndpoint ?? limit;
  const ids: string[] = [];
  const free: number[] = [];
  for (const [id, n] of limits?.inFlight ?? []) {
    ids.push(id);
    free.push(Math.max(0, cap - n));
  }
  const { rows } = await sql<ClaimedRow>`
    with due as (
      -- Each enabled endpoint's earliest due deliveries, up to the share it has free: one range of
      -- webhook_deliveries_endpoint_due each, and none for an endpoint at its cap. The endpoints come in a new
      -- random order each claim, so that when the slots run out first, no endpoint is always the one left
      -- waiting; the rows are locked as they are taken, so a claim locks no more than it claims.
      select d.id, d.event_id
      from (select e.id from webhook_endpoints e where not e.disabled order by random()) e
      cross join lateral (
        select d.id, d.event_id from webhook_deliveries d
        where d.endpoint_id = e.id and d.status = 'pending' and d.next_attempt_at <= now()
          and (not ${firstOnly}::boolean or d.attempts = 0)
        order by d.next_attempt_at
        limit least(${limit}::int, coalesce(
          (select q.free from unnest(${ids}::text[], ${free}::int[]) q(id, free) where q.id = e.id), ${cap}::int))
        for update of d skip locked
      ) d
      limit ${limit}
    )
    update webhook_deliveries d
    set attempts = d.attempts + 1,
        last_attempt_at = now(),
        lease_until = now() + ${leaseMs} * interval '1 millisecond',
        next_attempt_at = now() + ${leaseMs} * interval '1 millisecond'
    from due
    -- offset 0 keeps this a lookup by id per claimed delivery: flattened, the planner hash-joins the whole view,
    -- building every ledger entry's event JSON on each claim (223 ms at 17,000 entries, growing with the
    -- ledger; 1.7 ms this way).
    cross join lateral (select v.id, v.type, v.data, v.created_at from events v where v.id = due.event_id offset 0) ev,
    webhook_endpoints e
    where d.id = due.id and e.id = d.endpoint_id
    returning d.id, d.attempts, d.endpoint_id, e.url, e.secret, e.previous_secret, e.previous_secret_until,
              ev.id as event_id, ev.type as event_type, ev.data as event_data, ev.created_at as event_created_at`.execute(
    db,
  );
  return rows.map(toClaimed);
}

/**
 * Claims the first attempts of new deliveries (written with their events), as many as `slots` can send.
 * `events` is how many events they are for; `more` is true when the slots were filled, so more may be waiting.
 */
export async function dispatchAndClaim(
  db: Db,
  opts: { maxEvents: number; slots: number; leaseMs: number },
): Promise<{ events: number; more: boolean; claimed: ClaimedDelivery[] }> {
  const claimed = await claimDeliveries(db, opts.slots, opts.leaseMs, true);
  return {
    events: new Set(claimed.map((d) => d.event.id)).size,
    more: opts.slots > 0 && claimed.length === opts.slots,
    claimed,
  };
}

export interface AttemptResult {
  id: number;
  /** The attempt number the claim gave: a result for an older claim (a lease that ran out) is ignored. */
  attempts: number;
  delivered: boolean;
  statusCode: number | null;
  error: string | null;
  /** Null: no attempt left (failed). Ignored when delivered. */
  retryInMs: number | null;
}

/**
 * Records the outcomes of attempts, in one statement. The worker records each outcome as it comes, so this
 * commits once per delivery: without waiting for its WAL flush (synchronous_commit off for this transaction
 * only). An outcome lost that way can only be lost with the database server itself, and then the delivery is
 * sent again when its lease ends: at least once, as after a crash of the worker.
 */
export async function recordAttempts(db: Db, results: AttemptResult[]) {
  if (results.length === 0) return;
  await sql`
    with async_commit as (select set_config('synchronous_commit', 'off', true))
    update webhook_deliveries d
    set status = case when r.delivered then 'delivered' when r.retry_ms is null then 'failed' else 'pending' end,
        next_attempt_at = case when r.delivered or r.retry_ms is null then d.next_attempt_at
                               else now() + r.retry_ms * interval '1 millisecond' end,
        delivered_at = case when r.delivered then now() else d.delivered_at end,
        lease_until = null,
        last_status_code = r.status_code,
        last_error = r.error
    from jsonb_to_recordset(${JSON.stringify(
      results.map((r) => ({
        id: r.id,
        attempts: r.attempts,
        delivered: r.delivered,
        status_code: r.statusCode,
        error: r.error,
        retry_ms: r.retryInMs,
      })),
    )}::jsonb) as r(id bigint, attempts integer, delivered boolean, status_code integer, error text, retry_ms bigint),
    async_commit
    -- The ids as an array too: the planner then finds the rows by primary key. Joined only to the record set
    -- (estimated at 100 rows), it could read every pending delivery instead, once per outcome: with a backlog
    -- of 25,000 the drain ran at about 400 deliveries/s, the database's two cores busy with those scans.
    where d.id = any(${results.map((r) => r.id)}::bigint[])
      and d.id = r.id and d.attempts = r.attempts and d.status = 'pending'`.execute(db);
}
