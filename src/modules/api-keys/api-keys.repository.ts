import type { Db } from '../../db/database.ts';
import { exactTime, olderThan } from '../../lib/keyset.ts';

export async function insertApiKey(
  db: Db,
  key: { id: string; name: string; prefix: string; keyHash: string; scopes: string[] },
) {
  return db
    .insertInto('api_keys')
    .values({ id: key.id, name: key.name, prefix: key.prefix, key_hash: key.keyHash, scopes: key.scopes })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findActiveKeyByHash(db: Db, keyHash: string) {
  return db
    .selectFrom('api_keys')
    .select(['id', 'scopes', 'last_used_at'])
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
}

/** Records use at most once a minute per key, so a busy key does not write a row version per request. */
export async function touchApiKey(db: Db, id: string) {
  await db
    .updateTable('api_keys')
    .set({ last_used_at: new Date() })
    .where('id', '=', id)
    .where((eb) =>
      eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', new Date(Date.now() - 60_000))]),
    )
    .execute();
}

/** Newest first; `after` is the last row's exact created_at (see `exactTime`) and id. */
export async function listApiKeys(db: Db, limit: number, after?: { createdAt: string; id: string }) {
  let q = db
    .selectFrom('api_keys')
    .selectAll()
    .select(exactTime('created_at').as('created_at_exact'))
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (after) {
    q = q.where(olderThan('created_at', 'id', { time: after.createdAt, id: after.id }));
  }
  return q.execute();
}

export async function revokeApiKey(db: Db, id: string) {
  return db
    .updateTable('api_keys')
    .set({ revoked_at: new Date() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
}

export async function findApiKey(db: Db, id: string) {
  return db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
}
