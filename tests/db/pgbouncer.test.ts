import { describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/db/embedded.ts';
import {
  asAdmin,
  buildTestApp,
  createEmptyDatabase,
  createTestDatabase,
  grant,
  throughPgBouncer,
} from '../helpers/app.ts';
import { startServer } from '../helpers/server-process.ts';

/**
 * The service behind PgBouncer in transaction mode (started by the test setup when installed): each
 * transaction may run on another server connection, and startup parameters it does not know are refused.
 */
describe.skipIf(!inject('pgbouncer'))('through PgBouncer in transaction mode', () => {
  it('debits, grants and replays give exact answers', async () => {
    const direct = await createTestDatabase();
    const pooled = throughPgBouncer(direct) as string;
    const t = await buildTestApp({ DATABASE_POOLER: 'transaction' }, pooled);
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);

    const users = ['pgb_a', 'pgb_b', 'pgb_c', 'pgb_d'];
    for (const user of users) await grant(t.app, user, 40);
    // A grant's replay through the pooler answers the first grant.
    const again = await grant(t.app, 'pgb_a', 40, { key: 'pgb-grant-once' });
    const twice = await grant(t.app, 'pgb_a', 40, { key: 'pgb-grant-once' });
    expect(twice.replayed).toBe(true);
    expect(twice.entry.id).toBe(again.entry.id);

    const debit = (user: string, key: string, amount: number) =>
      t.app.inject({
        method: 'POST',
        url: `/api/v1/accounts/${user}/debits`,
        headers: { ...asAdmin(), 'idempotency-key': key },
        payload: { amount },
      });
    // 4 users x 30 debits of 2 on 40 credits (80 for pgb_a), each key sent twice at once: named statements
    // colliding across server connections made most of these 500 before.
    const requests = users.flatMap((user) =>
      Array.from({ length: 30 }, (_, i) => [
        debit(user, `${user}-${i}`, 2),
        debit(user, `${user}-${i}`, 2),
      ]).flat(),
    );
    const answers = await Promise.all(requests);
    const statuses = answers.map((r) => r.statusCode);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    for (const s of statuses) expect([200, 201, 402]).toContain(s);

    const { rows } = await t.pg.query<{ user_id: string; balance: string; debits: number; keys: number }>(
      `select a.user_id, a.balance,
         (select count(*)::int from ledger_entries l where l.user_id = a.user_id and l.type = 'debit') as debits,
         (select count(distinct idempotency_key)::int from ledger_entries l where l.user_id = a.user_id and l.type = 'debit') as keys
       from accounts a where a.user_id = any($1) order by a.user_id`,
      [users],
    );
    for (const row of rows) {
      const granted = row.user_id === 'pgb_a' ? 80 : 40;
      const expected = Math.min(30, granted / 2);
      expect(row.debits, row.user_id).toBe(expected);
      expect(row.keys, row.user_id).toBe(expected);
      expect(Number(row.balance), row.user_id).toBe(granted - 2 * expected);
    }
    const replay = await debit('pgb_b', 'pgb_b-0', 2);
    expect(replay.statusCode).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    const balance = await t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/pgb_b/balance',
      headers: asAdmin(),
    });
    expect(balance.json().data.balance).toBe(0);
  });

  it('a start through it without DATABASE_POOLER=transaction fails in one line saying to set it', async () => {
    const pooled = throughPgBouncer(await createTestDatabase()) as string;
    const server = startServer({
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      PORT: String(await freePort()),
      DATABASE_URL: pooled,
    });
    expect(await server.exited()).toBe(1);
    expect(server.errors().trim()).toMatch(/^failed to start: .*set DATABASE_POOLER=transaction$/);
  });

  it('three replicas starting at once on an empty database all become ready, each migration applied once', async () => {
    for (const migrationUrl of ['pooled', 'direct'] as const) {
      const direct = await createEmptyDatabase();
      const pooled = throughPgBouncer(direct) as string;
      const replicas = await Promise.all(
        [0, 1, 2].map(async () => {
          const port = await freePort();
          return {
            port,
            server: startServer({
              NODE_ENV: 'test',
              LOG_LEVEL: 'warn',
              PORT: String(port),
              DATABASE_URL: pooled,
              DATABASE_POOLER: 'transaction',
              ...(migrationUrl === 'direct' ? { DATABASE_MIGRATION_URL: direct } : {}),
              EXPIRY_SWEEP_INTERVAL_MS: '0',
            }),
          };
        }),
      );
      await Promise.all(replicas.map((r) => r.server.ready(`http://127.0.0.1:${r.port}/readyz`)));
      const res = await fetch(`http://127.0.0.1:${replicas[0]?.port}/api/v1/credits/balance`, {
        headers: asAdmin(),
      });
      expect(res.status).toBe(200);
      for (const r of replicas) expect(await r.server.stop()).toBe(0);

      const pg = (await import('pg')).default;
      const client = new pg.Client({ connectionString: direct });
      await client.connect();
      const { rows } = await client.query<{ version: number; n: number }>(
        'select version, count(*)::int as n from schema_migrations group by version order by version',
      );
      await client.end();
      expect(rows.length).toBeGreaterThanOrEqual(5);
      for (const row of rows) expect(row.n).toBe(1);
    }
  }, 120_000); // six node processes start: slow on a busy machine
});
