/**
 * `node bench/export.ts`: the CSV export and the ledger filters at scale (CONTRACT section 15).
 *
 * 1. A fresh database beside BENCH_DATABASE_URL / TEST_DATABASE_URL (default the local system Postgres),
 *    migrated, with EXPORT_ROWS entries (default 1,000,000) over EXPORT_USERS accounts (default 1,000),
 *    written by one INSERT ... SELECT with triggers off (the bench measures reading them, not writing).
 * 2. The service (`node src/server.ts`) in a child process. `GET /api/v1/ledger` with `Accept: text/csv`
 *    (every row), read by a client that only counts records; the service's RSS is sampled from /proc every
 *    50 ms. Goal: RSS growth < 50 MB, >= 50,000 rows/s.
 * 3. EXPLAIN (ANALYZE, BUFFERS) of a ledger page, unfiltered and filtered (a rare type, a time range), for one
 *    account and across accounts: a filtered page must cost what an unfiltered one does.
 * Prints the figures and one JSON line. The database is dropped at the end.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createSigner } from 'fast-jwt';
import pg from 'pg';
import { freePort } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrator.ts';
import { filteredEntries } from '../src/modules/ledger/index.ts';
import { createDatabase } from '../src/db/database.ts';

const root = path.resolve(import.meta.dirname, '..');
const ROWS = Number(process.env.EXPORT_ROWS ?? 1_000_000);
const USERS = Number(process.env.EXPORT_USERS ?? 1_000);
const PER_USER = Math.ceil(ROWS / USERS);
const base = new URL(
  process.env.BENCH_DATABASE_URL ||
    process.env.TEST_DATABASE_URL ||
    'postgres://postgres@127.0.0.1:5432/postgres',
);
const dbName = `bench_export_${process.pid}`;
const adminUrl = new URL(base);
adminUrl.pathname = '/postgres';
const url = new URL(base);
url.pathname = `/${dbName}`;

const admin = new pg.Client({ connectionString: adminUrl.toString() });
await admin.connect();
await admin.query(`create database ${dbName}`);
const secret = 'bench-export-secret-0123456789';
let server: ReturnType<typeof spawn> | undefined;
try {
  await migrate(url.toString());
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  let t0 = Date.now();
  await db.query('set session_replication_role = replica');
  await db.query(
    `insert into accounts (user_id, balance) select 'user_' || u, 0 from generate_series(1, $1) u`,
    [USERS],
  );
  // Per user: a grant, then debits of 1, a few with text that needs quoting or a formula prefix.
  await db.query(
    `insert into ledger_entries (user_id, type, amount, balance_after, source, reason, metadata, created_at)
     select 'user_' || u, case when i = 1 then 'grant' else 'debit' end,
            case when i = 1 then $2::bigint else -1 end,
            case when i = 1 then $2::bigint else $2::bigint - (i - 1) end, 'api',
            case when i % 100 = 0 then 'job, "quoted"' when i % 101 = 0 then '=cmd' else 'job' end,
            case when i % 7 = 0 then '{"jobId": "j1"}'::jsonb else '{}'::jsonb end,
            timestamptz '2026-01-01' + make_interval(secs => (i * $1 + u) * 0.001)
     from generate_series(1, $2::int) i, generate_series(1, $1::int) u`,
    [USERS, PER_USER],
  );
  await db.query(`update accounts set balance = 1 where true`);
  await db.query('analyze');
  const seeded = Date.now() - t0;
  const total = USERS * PER_USER;
  console.log(`seeded ${total} entries over ${USERS} accounts in ${(seeded / 1000).toFixed(1)} s`);

  // 3. Index cost of a page, filtered and not.
  const database = createDatabase(url.toString(), { poolSize: 1, queryTimeoutMs: 0 });
  const explain = async (name: string, filter: Parameters<typeof filteredEntries>[0]) => {
    const q = filteredEntries(filter, { order: 'desc', limit: 21 }).compile(database.db);
    const { rows } = await db.query(
      `explain (analyze, buffers, costs off) ${q.sql}`,
      q.parameters as unknown[],
    );
    const plan = rows.map((r) => r['QUERY PLAN'] as string);
    const buffers = plan.find((l) => l.includes('Buffers'))?.trim() ?? '';
    const time = plan.find((l) => l.startsWith('Execution Time'))?.trim() ?? '';
    return { name, buffers, time, plan };
  };
  const all = ['grant', 'debit', 'reversal', 'expiry', 'debit_reversal'] as const;
  const pages = [
    await explain('one account, unfiltered', { userId: 'user_7', types: all }),
    await explain('one account, type=grant', { userId: 'user_7', types: ['grant'] }),
    await explain('one account, type=debit, from/to mid-history', {
      userId: 'user_7',
      types: ['debit'],
      from: '2026-01-01T00:05:00Z',
      to: '2026-01-01T00:06:00Z',
    }),
    await explain('all accounts, unfiltered', { types: all }),
    await explain('all accounts, type=grant (rare)', { types: ['grant'] }),
    await explain('all accounts, from/to mid-history', {
      types: all,
      from: '2026-01-01T00:05:00Z',
      to: '2026-01-01T00:06:00Z',
    }),
  ];
  await database.close();
  for (const p of pages) console.log(`${p.name.padEnd(48)} ${p.time.padEnd(28)} ${p.buffers}`);
  if (process.env.EXPORT_PLANS) for (const p of pages) console.log(`\n${p.name}\n${p.plan.join('\n')}`);
  await db.end();

  // 2. The export, from the service in a child process.
  const port = await freePort();
  server = spawn(process.execPath, [path.join(root, 'src/server.ts')], {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      DATABASE_URL: url.toString(),
      PORT: String(port),
      JWT_SECRET: secret,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '0',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const pid = server.pid as number;
  const rss = () =>
    Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  const token = createSigner({ key: secret, expiresIn: 3_600_000 })({ sub: 'bench', roles: ['admin'] });
  const fetchCsv = (pathname: string) =>
    new Promise<{ records: number; bytes: number; status: number }>((resolve, reject) => {
      const req = http.get(
        {
          host: '127.0.0.1',
          port,
          path: pathname,
          headers: { authorization: `Bearer ${token}`, accept: 'text/csv' },
        },
        (res) => {
          let records = 0;
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            // count record ends (no cell of this ledger holds a line break)
            for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) records++;
          });
          res.on('end', () => resolve({ records, bytes, status: res.statusCode ?? 0 }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
    });
  for (let i = 0; i < 200; i++) {
    try {
      await new Promise<void>((resolve, reject) =>
        http
          .get({ host: '127.0.0.1', port, path: '/healthz' }, (r) => {
            r.resume();
            resolve();
          })
          .on('error', reject),
      );
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // Warm up (JIT of the code paths, the pools), then measure from the RSS after it.
  await fetchCsv('/api/v1/ledger?userId=user_1');
  await new Promise((r) => setTimeout(r, 500));
  const before = rss();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss());
  }, 50);
  t0 = performance.now();
  const result = await fetchCsv('/api/v1/ledger');
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  const rows = result.records - 1;
  const figures = {
    rows,
    seconds: Number(seconds.toFixed(2)),
    rowsPerSecond: Math.round(rows / seconds),
    megabytes: Number((result.bytes / 1e6).toFixed(1)),
    rssBeforeMb: Number((before / 1e6).toFixed(1)),
    rssPeakMb: Number((peak / 1e6).toFixed(1)),
    rssGrowthMb: Number(((peak - before) / 1e6).toFixed(1)),
    goals: { rssGrowthUnder50Mb: peak - before < 50e6, atLeast50kRowsPerSecond: rows / seconds >= 50_000 },
    pages: pages.map(({ name, time, buffers }) => ({ name, time, buffers })),
  };
  console.log(
    `export: ${rows} rows, ${figures.megabytes} MB in ${figures.seconds} s = ${figures.rowsPerSecond} rows/s; ` +
      `service RSS ${figures.rssBeforeMb} MB -> peak ${figures.rssPeakMb} MB (+${figures.rssGrowthMb} MB)`,
  );
  if (result.status !== 200 || rows !== total)
    throw new Error(`export answered ${result.status} with ${rows} rows`);
  console.log(JSON.stringify(figures));
} finally {
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server?.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  await admin.query(`drop database if exists ${dbName} with (force)`);
  await admin.end();
}
