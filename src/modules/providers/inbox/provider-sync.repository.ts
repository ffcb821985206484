import { sql } from 'kysely';
import type { Executor } from '../../../db/database.ts';

/**
 * Takes the lease of a periodic job (`name`) for `owner` until `seconds` from now, when it is free, expired,
 * or already this owner's. Returns the job's high-water mark, or undefined when another owner holds it.
 * A lease row, not an advisory lock: nothing is held across the run (no session, no open transaction), so it
 * works behind a transaction-mode pooler, and a crashed replica's lease simply runs out.
 */
export async function takeLease(ex: Executor, name: string, owner: string, seconds: number) {
  await ex
    .insertInto('provider_sync_state')
    .values({ name })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await ex
    .updateTable('provider_sync_state')
    .set({ lease_owner: owner, lease_until: sql<Date>`now() + make_interval(secs => ${seconds})` })
    .where('name', '=', name)
    .where((eb) =>
      eb.or([
        eb('lease_until', 'is', null),
        eb('lease_until', '<', sql<Date>`now()`),
        eb('lease_owner', '=', owner),
      ]),
    )
    .returning(['high_water'])
    .executeTakeFirst();
  return row ? { highWater: row.high_water } : undefined;
}

/** Extends the lease; false when it was lost (it ran out and another owner took it). */
export async function renewLease(ex: Executor, name: string, owner: string, seconds: number) {
  const row = await ex
    .updateTable('provider_sync_state')
    .set({ lease_until: sql<Date>`now() + make_interval(secs => ${seconds})` })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .returning('name')
    .executeTakeFirst();
  return row !== undefined;
}

/** Frees the lease; with `done`, records the run and moves the high-water mark. */
export async function releaseLease(
  ex: Executor,
  name: string,
  owner: string,
  done?: { highWater: Date; result: unknown },
) {
  await ex
    .updateTable('provider_sync_state')
    .set({
      lease_owner: null,
      lease_until: null,
      ...(done
        ? {
            high_water: done.highWater,
            last_run_at: sql<Date>`now()`,
            last_result: JSON.stringify(done.result),
          }
        : {}),
    })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .execute();
}
