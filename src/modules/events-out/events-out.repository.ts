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

export async function listEvents(db: Db, limit: number, beforeId?: number) {
  let q = db
    .selectFrom('events')
    .select(['id', 'type', 'data', 'created_at'])
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (beforeId !== undefined) q = q.where('id', '<', beforeId);
  return q.execute();
}

export async function findEvent(db: Db, id: number) {
  return db
    .selectFrom('events')
    .select(['id', 'type', 'data', 'created_at'])
    .where('id', '=', id)
    .executeTakeFirst();
}

// ------------------------------------------------------------------------------------------------ deliveries

export type DeliveryListRow = WebhookDeliveryRow & { event_type: string };

export async function listDeliveries(
  db: Db,
  endpointId: string,
  limit: number,
  opts: { beforeId?: number; status?: DeliveryStatus },
): Promise<DeliveryListRow[]> {
  let q = db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('events as e', 'e.id', 'd.event_id')
    .selectAll('d')
    .select('e.type as event_type')
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
    .innerJoin('events as e', 'e.id', 'd.event_id')
    .selectAll('d')
    .select('e.type as event_type')
    .where('d.endpoint_id', '=', endpointId)
    .where('d.id', '=', id);
  if (forUpdate) q = q.forUpdate('d' as never);
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

/** Events no endpoint wants are marked dispatched up to this many at a time, from the oldest undispatched ones. */
const UNWANTED_WINDOW = 1_000;

/** True when endpoint `e` wants event `ev`: enabled, existing when it happened, addressed and subscribed. */
const wants = (e: string, ev: string) =>
  sql.raw(`not ${e}.disabled and ${e}.created_at <= ${ev}.created_at
           and (${ev}.endpoint_id is null or ${ev}.endpoint_id = ${e}.id)
           and (${e}.events @> array[${ev}.type] or ${e}.events @> array['*'])`);

/**
 * Dispatches undispatched events, in one statement:
 * - events some endpoint wants: their deliveries are created, one per enabled endpoint subscribed to the
 *   event's type (and that existed when it happened), already claimed for their first attempt (attempt 1, a
 *   lease of `leaseMs`); it takes as many of them as `slots` free attempt slots can send (slots / endpoints,
 *   at least one while a slot is free). The caller sends the deliveries returned at once;
 * - events no endpoint wants, among the oldest undispatched ones: only marked, in bulk, so that they never
 *   wait for attempt slots (every ledger entry writes an event, subscribed or not).
 * Both are marked dispatched. SKIP LOCKED: replicas dispatching at once take different events. `events` is
 * how many were dispatched either way; `more` is true when a limit was reached, so more may be waiting now.
 */
export async function dispatchAndClaim(
  db: Db,
  opts: { maxEvents: number; slots: number; leaseMs: number },
): Promise<{ events: number; more: boolean; claimed: ClaimedDelivery[] }> {
  const { rows } = await sql<{ events: number; more: boolean } & ({ id: null } | ClaimedRow)>`
    with budget as (
      select case when endpoints = 0 or ${opts.slots}::int <= 0 then 0
                  else least(${opts.maxEvents}::int, greatest(1, ${opts.slots}::int / endpoints)) end as events
      from (select count(*)::int as endpoints from webhook_endpoints where not disabled) e
    ), head as (
      select id, type, endpoint_id, created_at from events where dispatched_at is null order by id
      limit ${UNWANTED_WINDOW}::int
    ), unwanted as (
      -- = any(array(...)): the ids are computed once, then each is read by its key. As a join, a planner short of
      -- statistics can scan the window again for every undispatched event (seconds on a backlog).
      select ev.id from events ev
      where ev.id = any(array(select h.id from head h
                              where not exists (select 1 from webhook_endpoints e where ${wants('e', 'h')})))
        and ev.dispatched_at is null
      for update skip locked
    ), picked as (
      select p.id, p.type, p.endpoint_id, p.data, p.created_at from events p
      where p.dispatched_at is null
        and exists (select 1 from webhook_endpoints e where ${wants('e', 'p')})
      order by p.id
      limit (select events from budget)
      for update skip locked
    ), fanned as (
      insert into webhook_deliveries (endpoint_id, event_id, attempts, last_attempt_at, lease_until, next_attempt_at)
      select e.id, p.id, 1, now(), now() + ${opts.leaseMs} * interval '1 millisecond',
             now() + ${opts.leaseMs} * interval '1 millisecond'
      from picked p
      join webhook_endpoints e on ${wants('e', 'p')}
      on conflict (endpoint_id, event_id) do nothing
      returning id, endpoint_id, event_id, attempts
    ), marked as (
      update events ev set dispatched_at = now()
      where ev.id = any(array(select id from picked union all select id from unwanted))
    )
    select c.events, c.more, f.id, f.attempts, f.endpoint_id, e.url, e.secret, e.previous_secret, e.previous_secret_until,
           p.id as event_id, p.type as event_type, p.data as event_data, p.created_at as event_created_at
    from (select (select count(*) from picked)::int + (select count(*) from unwanted)::int as events,
                 (select count(*) from head) = ${UNWANTED_WINDOW}::int
                 or (select count(*) from picked) = (select events from budget) and (select events from budget) > 0
                   as more) c
    left join (fanned f join picked p on p.id = f.event_id join webhook_endpoints e on e.id = f.endpoint_id) on true`.execute(
    db,
  );
  return {
    events: rows[0]?.events ?? 0,
    more: rows[0]?.more ?? false,
    claimed: rows
      .filter((r): r is { events: number; more: boolean } & ClaimedRow => r.id !== null)
      .map(toClaimed),
  };
}

/**
 * Claims up to `limit` due deliveries of enabled endpoints for `leaseMs`: counts the attempt and moves
 * next_attempt_at to the lease's end, so no other replica takes them until the attempt is recorded or the
 * lease has run out (a replica that died). SKIP LOCKED: replicas claiming at once take different rows.
 */
export async function claimDeliveries(db: Db, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const { rows } = await sql<ClaimedRow>`
    with due as (
      select d.id from webhook_deliveries d
      where d.status = 'pending' and d.next_attempt_at <= now()
        and exists (select 1 from webhook_endpoints e where e.id = d.endpoint_id and not e.disabled)
      order by d.next_attempt_at
      limit ${limit}
      for update of d skip locked
    )
    update webhook_deliveries d
    set attempts = d.attempts + 1,
        last_attempt_at = now(),
        lease_until = now() + ${leaseMs} * interval '1 millisecond',
        next_attempt_at = now() + ${leaseMs} * interval '1 millisecond'
    from due, webhook_endpoints e, events ev
    where d.id = due.id and e.id = d.endpoint_id and ev.id = d.event_id
    returning d.id, d.attempts, d.endpoint_id, e.url, e.secret, e.previous_secret, e.previous_secret_until,
              ev.id as event_id, ev.type as event_type, ev.data as event_data, ev.created_at as event_created_at`.execute(
    db,
  );
  return rows.map(toClaimed);
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

/** Records the outcomes of attempts, in one statement. */
export async function recordAttempts(db: Db, results: AttemptResult[]) {
  if (results.length === 0) return;
  await sql`
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
    )}::jsonb) as r(id bigint, attempts integer, delivered boolean, status_code integer, error text, retry_ms bigint)
    where d.id = r.id and d.attempts = r.attempts and d.status = 'pending'`.execute(db);
}
