import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { closeGracefully } from '../../src/http/shutdown.ts';
import type { App } from '../../src/http/types.ts';
import { asAdmin, buildTestApp, cleanup, createTestDatabase, grant } from '../helpers/app.ts';
import { DatabaseProxy, targetOf, throughProxy } from '../helpers/db-proxy.ts';

const QUERY_TIMEOUT_MS = 1_000;

async function behindProxy(env: Record<string, string> = {}) {
  const realUrl = await createTestDatabase();
  const proxy = new DatabaseProxy(targetOf(realUrl));
  await proxy.start();
  cleanup(async () => proxy.thaw());
  const t = await buildTestApp(
    { DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS), ...env },
    throughProxy(realUrl, proxy),
  );
  t.pg.on('error', () => {});
  return { ...t, proxy };
}

const debit = (app: App, userId: string, key: string) =>
  app.inject({
    method: 'POST',
    url: `/api/v1/accounts/${userId}/debits`,
    headers: { ...asAdmin(), 'idempotency-key': key },
    payload: { amount: 1 },
  });

describe('a deadline per request, not per query', () => {
  it('a debit queued in the group commit behind a frozen call on the same account answers at its own deadline', async () => {
    const t = await behindProxy({ DEBIT_CALLS_IN_FLIGHT: '1' });
    await grant(t.app, 'dl_user', 10);
    expect((await debit(t.app, 'dl_user', 'warm')).statusCode).toBe(201);

    t.proxy.freeze();
    const first = debit(t.app, 'dl_user', 'frozen-first');
    await new Promise((r) => setTimeout(r, 50)); // the first is in its call; the second queues behind it
    const second = await debit(t.app, 'dl_user', 'queued-second');
    // Answered by its deadline (DATABASE_QUERY_TIMEOUT_MS + a margin from its own arrival), not after the
    // first call's timeout plus its own call.
    expect(second.statusCode).toBe(503);
    expect(second.json()).toMatchObject({ code: 'service_unavailable' });
    expect(second.json().errors[0]).toMatch(/did not complete within 1000 ms; retry it/);
    expect((await first).statusCode).toBe(503);

    t.proxy.thaw();
    for (let i = 0; i < 50 && (await t.app.inject({ url: '/readyz' })).statusCode !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // Its outcome was unknown when it answered (it may have left the queue into a frozen call): its retry
    // with the same key applies it exactly once, or replays it.
    const retry = await debit(t.app, 'dl_user', 'queued-second');
    expect([200, 201]).toContain(retry.statusCode);
    const { rows } = await t.pg.query(
      "select count(*)::int as n from ledger_entries where user_id = 'dl_user' and idempotency_key = 'queued-second'",
    );
    expect(rows[0].n).toBe(1);
  });
});

describe('a database outage in the log', () => {
  it('one line when it starts and one with the count when it ends, no stack per request', async () => {
    const realUrl = await createTestDatabase();
    const proxy = new DatabaseProxy(targetOf(realUrl));
    await proxy.start();
    const lines: string[] = [];
    const app = await buildApp(
      loadConfig({
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        RATE_LIMIT_PER_MINUTE: '0',
        DATABASE_URL: throughProxy(realUrl, proxy),
        DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      }),
      { logStream: { write: (line) => lines.push(line) } },
    );
    cleanup(async () => {
      await app.close();
      await proxy.restore().catch(() => {});
    });
    await app.ready();
    expect((await app.inject({ url: '/api/v1/credit-packages' })).statusCode).toBe(200);

    await proxy.cut();
    const during = await Promise.all(
      Array.from({ length: 30 }, () => app.inject({ url: '/api/v1/credit-packages' })),
    );
    for (const res of during) expect(res.statusCode).toBe(503);
    await proxy.restore();
    let back = 0;
    for (let i = 0; i < 50 && back !== 200; i++) {
      back = (await app.inject({ url: '/api/v1/credit-packages' })).statusCode;
    }
    expect(back).toBe(200);

    const entries = lines.map((l) => JSON.parse(l) as { level: number; msg: string; failures?: number });
    const started = entries.filter((e) => e.msg.startsWith('database unavailable'));
    const ended = entries.filter((e) => e.msg === 'database available again');
    expect(started).toHaveLength(1);
    expect(ended).toHaveLength(1);
    expect(ended[0]?.failures).toBeGreaterThanOrEqual(30);
    expect(lines.join('\n')).not.toMatch(/"stack"/);
    expect(entries.filter((e) => e.level >= 50)).toHaveLength(1); // the one 'database unavailable' line
  });
});

describe('shutdown under keep-alive load', () => {
  it('every request on a kept-alive connection gets an answer (200, or the 503 envelope with Connection: close), never a reset', async () => {
    const { app } = await buildTestApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const outcomes = { ok: 0, unavailable: 0, errors: [] as string[] };
    let stopping = false;

    const one = (agent: http.Agent) =>
      new Promise<{ status: number; connection?: string; body: string }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/api/v1/credit-packages', agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }),
          );
        });
        req.on('error', reject);
      });

    const client = async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (;;) {
          const res = await one(agent);
          if (res.status === 200) {
            outcomes.ok++;
            continue;
          }
          expect(res.status).toBe(503);
          expect(res.connection).toBe('close');
          expect(JSON.parse(res.body)).toMatchObject({ code: 'service_unavailable', statusCode: 503 });
          outcomes.unavailable++;
          return; // a client retries elsewhere
        }
      } catch (err) {
        outcomes.errors.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      } finally {
        agent.destroy();
      }
    };

    const clients = Array.from({ length: 48 }, client);
    while (outcomes.ok < 200) await new Promise((r) => setTimeout(r, 10));
    stopping = true;
    await closeGracefully(app);
    await Promise.all(clients);
    expect(stopping).toBe(true);
    expect(outcomes.errors).toEqual([]);
    expect(outcomes.unavailable).toBe(48);
  });
});

describe('the group commit drops a request whose deadline passed while it waited', () => {
  it('never sends it (no database needed)', async () => {
    const { createGroupCommit } = await import('../../src/modules/ledger/group-commit.ts');
    const { createDeadline, runWithDeadline } = await import('../../src/lib/deadline.ts');
    const sent: string[] = [];
    let releaseFirst: () => void = () => {};
    const gc = createGroupCommit<string, string>({
      maxInFlight: 1,
      maxBatch: 10,
      keyOf: () => 'same-account',
      sendOne: async (a) => {
        sent.push(a);
        if (a === 'first') await new Promise<void>((r) => (releaseFirst = r));
        return a;
      },
      sendMany: async (list) => {
        sent.push(...list);
        return list;
      },
    });
    const first = gc.run('first');
    const deadline = createDeadline(20, 20);
    const second = runWithDeadline(deadline, () => gc.run('second'));
    await expect(second).rejects.toMatchObject({ code: 'service_unavailable' });
    expect(gc.state.waiting).toBe(0);
    releaseFirst();
    expect(await first).toBe('first');
    await new Promise((r) => setTimeout(r, 10));
    expect(sent).toEqual(['first']);
  });
});

describe('the outage log (no database needed)', () => {
  it('one line at the start, a summary at most every interval, one line with the count at the end', async () => {
    const { createOutageLog, outageAwareLog } = await import('../../src/db/outage.ts');
    const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const log = {
      error: (obj: object, msg: string) => lines.push({ level: 'error', obj: obj as never, msg }),
      warn: (obj: object, msg: string) => lines.push({ level: 'warn', obj: obj as never, msg }),
      info: (obj: object, msg: string) => lines.push({ level: 'info', obj: obj as never, msg }),
    };
    let now = 0;
    const outage = createOutageLog(log, { summaryEveryMs: 60_000, now: () => now });
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' });
    for (let i = 0; i < 1000; i++) {
      now += 100; // 100 s in all
      outage.failed(refused);
    }
    // A background job's warning about the same outage only counts.
    outageAwareLog(log, outage).warn({ err: refused }, 'webhook worker pass failed');
    outageAwareLog(log, outage).warn({ other: true }, 'something else');
    outage.recovered();
    outage.recovered();
    expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual([
      'error database unavailable: what needs it answers 503 until it is back (one line now, a count when it ends)',
      'warn database still unavailable',
      'warn something else',
      'info database available again',
    ]);
    expect(lines[0]?.obj).toEqual({ reason: 'ECONNREFUSED connect ECONNREFUSED 10.0.0.1:5432' });
    expect(lines[3]?.obj).toMatchObject({ failures: 1001 });
  });
});
