import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { App } from '../../../src/http/types.ts';
import { asAdmin } from '../../helpers/app.ts';

/** A small seeded generator (mulberry32), so a failing history can be replayed from its seed. */
export function seeded(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
  };
}

/** A package to buy, through the API. */
export async function createPackage(app: App, credits: number, price: number, currency: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/credit-packages',
    headers: asAdmin(),
    payload: { name: `p ${currency} ${price}`, credits, price, currency },
  });
  if (res.statusCode !== 201) throw new Error(`package: ${res.body}`);
  return res.json().data.id as string;
}

/** A completed purchase row (as a provider's would be) and its grant. */
export async function buy(
  app: App,
  pool: pg.Pool,
  p: {
    userId: string;
    packageId: string;
    credits: number;
    price: number;
    currency: string;
    expiresAt?: Date;
  },
) {
  const id = `pur_${randomBytes(6).toString('hex')}`;
  await pool.query(
    `insert into purchases (id, user_id, package_id, provider, status, credits, price, currency, completed_at)
     values ($1, $2, $3, 'dev', 'completed', $4, $5, $6, now())`,
    [id, p.userId, p.packageId, p.credits, p.price, p.currency],
  );
  await app.services.ledger.grant({
    userId: p.userId,
    amount: p.credits,
    source: 'dev',
    purchaseId: id,
    idempotencyKey: `grant-${id}`,
    reason: 'purchase',
    expiresAt: p.expiresAt ?? null,
  });
  return id;
}

const key = () => `k-${randomBytes(8).toString('hex')}`;

/**
 * A random history over `users`: purchases in usd and eur and grants with no purchase, some expiring; debits,
 * holds captured in part or released, debit reversals in part, partial refunds, disputes lost (the rest clawed
 * back) and won (granted back), and expiries. Returns when every due lot has expired.
 */
export async function randomHistory(app: App, pool: pg.Pool, apiKey: string, seed: number, users: string[]) {
  const r = seeded(seed);
  const packages = [
    { credits: 3, price: 1000, currency: 'usd' },
    { credits: 7, price: 499, currency: 'usd' },
    { credits: 10, price: 999, currency: 'eur' },
    { credits: 13, price: 1, currency: 'eur' },
  ];
  const ids = await Promise.all(packages.map((p) => createPackage(app, p.credits, p.price, p.currency)));
  const purchases: { id: string; userId: string; credits: number; disputed: number }[] = [];
  const debits: { userId: string; id: string }[] = [];
  const post = (url: string, payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url, headers: { 'x-api-key': apiKey, 'idempotency-key': key() }, payload });
  for (let step = 0; step < 70; step++) {
    const userId = r.pick(users);
    const op = r.int(0, 11);
    if (op <= 2) {
      const i = r.int(0, packages.length - 1);
      const p = packages[i] as (typeof packages)[number];
      const expiresAt = r.next() < 0.3 ? new Date(Date.now() + r.int(100, 1500)) : undefined;
      const id = await buy(app, pool, { userId, packageId: ids[i] as string, ...p, expiresAt });
      purchases.push({ id, userId, credits: p.credits, disputed: 0 });
    } else if (op === 3) {
      await app.services.ledger.grant({
        userId,
        amount: r.int(1, 9),
        source: 'dev',
        purchaseId: null,
        idempotencyKey: key(),
        reason: 'goodwill',
        expiresAt: r.next() < 0.3 ? new Date(Date.now() + r.int(100, 1500)) : null,
      });
    } else if (op <= 6) {
      const res = await post(`/api/v1/accounts/${userId}/debits`, { amount: r.int(1, 6) });
      if (res.statusCode === 201) debits.push({ userId, id: res.json().data.entry.id });
    } else if (op === 7) {
      const hold = await post(`/api/v1/accounts/${userId}/holds`, { amount: r.int(1, 5) });
      if (hold.statusCode === 201) {
        const h = hold.json().data.hold;
        if (r.next() < 0.7) {
          const cap = await post(`/api/v1/accounts/${userId}/holds/${h.id}/capture`, {
            amount: r.int(1, h.amount),
          });
          if (cap.statusCode === 201) debits.push({ userId, id: cap.json().data.entry.id });
        } else {
          await post(`/api/v1/accounts/${userId}/holds/${h.id}/release`, {});
        }
      }
    } else if (op === 8 && debits.length > 0) {
      const d = r.pick(debits);
      await post(`/api/v1/accounts/${d.userId}/debits/${d.id}/reversals`, { amount: r.int(1, 3) });
    } else if (op === 9 && purchases.length > 0) {
      // a partial refund
      const p = r.pick(purchases);
      await app.services.ledger.clawback({
        userId: p.userId,
        amount: r.int(1, p.credits),
        source: 'dev',
        purchaseId: p.id,
        idempotencyKey: key(),
        reason: 'partial refund',
      });
    } else if (op === 10 && purchases.length > 0) {
      // a dispute: the rest clawed back; won half of the time (granted back what it took)
      const p = r.pick(purchases);
      const lost = await app.services.ledger.clawback({
        userId: p.userId,
        amount: p.credits,
        source: 'dev',
        purchaseId: p.id,
        idempotencyKey: key(),
        reason: 'dispute',
      });
      if (r.next() < 0.5 && lost.taken > 0) {
        await app.services.ledger.grant({
          userId: p.userId,
          amount: lost.taken,
          source: 'dev',
          purchaseId: p.id,
          idempotencyKey: key(),
          reason: 'dispute won',
          expiresAt: null,
        });
      }
    } else {
      await new Promise((res) => setTimeout(res, r.int(5, 60)));
      await app.services.ledger.sweepExpired();
    }
  }
  await new Promise((res) => setTimeout(res, 1600));
  await app.services.ledger.sweepExpired();
  await app.services.ledger.sweepExpiredHolds();
}

/**
 * Spreads the ledger over days, keeping the order of everything: entry n (in created_at, id order) is moved
 * to `base` + n × `stepHours` hours, and each lot to its grant's time. The ledger is append-only; a test may
 * rewrite its own database's history with triggers off (session_replication_role), to get several report
 * intervals out of a history written in seconds.
 */
export async function spreadOverDays(pool: pg.Pool, base: string, stepHours: number) {
  const c = await pool.connect();
  try {
    await c.query('begin');
    await c.query('set local session_replication_role = replica');
    await c.query(
      `update ledger_entries e set created_at = $1::timestamptz + make_interval(hours => (x.n * $2)::int)
       from (select user_id, id, row_number() over (order by created_at, id) - 1 as n from ledger_entries) x
       where x.user_id = e.user_id and x.id = e.id`,
      [base, stepHours],
    );
    await c.query(
      `update credit_lots l set created_at = e.created_at from ledger_entries e
       where e.user_id = l.user_id and e.id = l.grant_entry_id`,
    );
    await c.query('commit');
  } finally {
    c.release();
  }
}
