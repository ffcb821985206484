import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../../helpers/app.ts';

// The group commit's call (credits_ledger_many) looks up every debit's idempotency key before deciding it.
// That must stay one index lookup per item: planned as a join, the planner's guess of 100 items made a pass
// over a ledger its statistics call small look cheaper, and every call read the whole table
// (migrations/033_ledger_many_probe_by_key.sql). The plan is read with auto_explain, in this session only.
describe('credits_ledger_many idempotency probe', () => {
  it('looks each key up in the unique index, even when the statistics say the ledger is small', async () => {
    const t = await buildTestApp();
    const c = await t.pg.connect();
    try {
      // 2,000 accounts with a grant each: small enough that one pass looks cheaper than 100 lookups, large
      // enough that one lookup is cheaper than one pass.
      await c.query(
        `select count(credits_grant('probe_' || g, 100, 'dev', null, 'seed-' || g, 'seed', '{}'::jsonb, null))
         from generate_series(1, 2000) g`,
      );
      await c.query('analyze ledger_entries');
      const plans: string[] = [];
      c.on('notice', (n) => plans.push(n.message ?? ''));
      await c.query(`load 'auto_explain'`);
      await c.query('set auto_explain.log_min_duration = 0');
      await c.query('set auto_explain.log_nested_statements = on');
      await c.query('set client_min_messages = log');

      const items = [1, 2, 3, 4].map((g) => ({
        o: 'd',
        u: `probe_${g}`,
        a: 10,
        k: `probe-debit-${g}`,
        h: 'h',
        r: null,
        m: {},
      }));
      // A replay of the first: the probe must find it.
      items.push({ ...items[0]!, u: 'probe_1', k: 'seed-1', a: 100 });
      const { rows } = await c.query<{ n: string; outcome: string; balance: string }>(
        'select n, outcome, balance from credits_ledger_many($1::jsonb) order by n',
        [JSON.stringify(items)],
      );
      await c.query('set client_min_messages = notice');
      expect(rows.map((r) => [Number(r.n), r.outcome])).toEqual([
        [1, 'created'],
        [2, 'created'],
        [3, 'created'],
        [4, 'created'],
        [5, 'key_reused'], // the grant's key, another body
      ]);

      const probe = plans.find((p) => p.includes('x.idempotency_key = e.k'));
      expect(probe).toBeDefined();
      expect(probe).toContain('Index Scan using ledger_entries_user_id_idempotency_key_key');
      expect(probe).not.toContain('Seq Scan on ledger_entries');
    } finally {
      c.release();
    }
  });
});
