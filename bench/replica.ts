/**
 * `node bench/replica.ts`: debits/s on the primary alone, then while a full credits report and a full CSV export
 * run on a streaming replica (DATABASE_READ_URL). Goal: >= 0.9x.
 *
 * A throwaway primary and a standby (pg_basebackup -R, tests/helpers/replica.ts), REPLICA_ROWS entries (default
 * 1,000,000) over 1,000 accounts, each account's debits from one priced lot (so the report costs a million
 * movements). The service runs in a child process with DATABASE_URL on the primary and DATABASE_READ_URL on
 * the standby; autocannon drives debits (BENCH_CONNECTIONS, default 16) for BENCH_DURATION seconds (default
 * 10): alone, with the report and the export looping, alone again. Prints the figures and one JSON line.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import autocannon from 'autocannon';
import { createSigner } from 'fast-jwt';
import pg from 'pg';
import { freePort } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrator.ts';
import { startReplicaPair } from '../tests/helpers/replica.ts';

const root = path.resolve(import.meta.dirname, '..');
const ROWS = Number(process.env.REPLICA_ROWS ?? 1_000_000);
const USERS = 1_000;
const PER_USER = Math.ceil(ROWS / USERS);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const secret = 'bench-replica-secret-0123456789';

const pair = await startReplicaPair(15);
let server: ReturnType<typeof spawn> | undefined;
try {
  await migrate(pair.primaryUrl);
  const db = new pg.Client({ connectionString: pair.primaryUrl });
  await db.connect();
  await db.query('set session_replication_role = replica');
  const big = PER_USER * 10 + 1_000_000;
  await db.query(
    `insert into accounts (user_id, balance) select 'user_' || u, $2::bigint - ($3::bigint - 1)
     from generate_series(1, $1) u`,
    [USERS, big, PER_USER],
  );
  await db.query(
    `insert into credit_lots (user_id, source, amount, remaining, grant_entry_id, created_at, price, currency)
     select 'user_' || u, 'dev', $2::bigint, $2::bigint - ($3::bigint - 1), 0, timestamptz '2026-01-01', 100000, 'usd'
     from generate_series(1, $1) u`,
    [USERS, big, PER_USER],
  );
  await db.query(
    `insert into ledger_entries (user_id, type, amount, balance_after, source, reason, lot_id, created_at)
     select 'user_' || u, case when i = 1 then 'grant' else 'debit' end,
            case when i = 1 then $2::bigint else -1 end, $2::bigint - (i - 1), 'api', 'job',
            case when i = 1 then null else l.id end,
            timestamptz '2026-01-01' + make_interval(secs => (i * $1 + u) * 0.01)
     from generate_series(1, $3::int) i, generate_series(1, $1::int) u
     join credit_lots l on l.user_id = 'user_' || u`,
    [USERS, big, PER_USER],
  );
  await db.query(`update credit_lots l set grant_entry_id = e.id from ledger_entries e
    where e.user_id = l.user_id and e.type = 'grant'`);
  await db.query('analyze');
  await db.end();
  await pair.caughtUp();
  console.log(`seeded ${USERS * PER_USER} entries; standby caught up`);

  const port = await freePort();
  server = spawn(process.execPath, [path.join(root, 'src/server.ts')], {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      DATABASE_URL: pair.primaryUrl,
      DATABASE_READ_URL: pair.standbyUrl,
      PORT: String(port),
      JWT_SECRET: secret,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '0',
      RATE_LIMIT_API_KEY_PER_MINUTE: '0',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const token = createSigner({ key: secret, expiresIn: 3_600_000 })({ sub: 'bench', roles: ['admin'] });
  const request = (method: string, pathname: string, headers: Record<string, string> = {}, body?: string) =>
    new Promise<{ status: number; body: string; bytes: number }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: pathname,
          method,
          headers: { authorization: `Bearer ${token}`, ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            if (chunks.length < 64) chunks.push(c);
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), bytes }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  for (let i = 0; ; i++) {
    try {
      await request('GET', '/healthz');
      break;
    } catch {
      if (i > 300) throw new Error('the service did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const created = await request(
    'POST',
    '/api/v1/api-keys',
    { 'content-type': 'application/json' },
    JSON.stringify({ name: 'bench', scopes: ['credits:debit'] }),
  );
  const apiKey = JSON.parse(created.body).data.key as string;

  const debits = async () => {
    const result = await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: CONNECTIONS,
      duration: DURATION,
      timeout: 10,
      requests: [
        {
          method: 'POST',
          setupRequest: (req) => ({
            ...req,
            path: `/api/v1/accounts/user_${1 + Math.floor(Math.random() * USERS)}/debits`,
            headers: {
              'content-type': 'application/json',
              'x-api-key': apiKey,
              'idempotency-key': randomBytes(12).toString('hex'),
            },
            body: '{"amount":1}',
          }),
        },
      ],
    });
    return { rps: result['2xx'] / result.duration, non2xx: result.non2xx, p99: result.latency.p99 };
  };

  // Warm-up, then alone, with the replica busy, alone again.
  await debits();
  const alone1 = await debits();
  let stop = false;
  const reads = {
    reports: 0,
    reportMs: [] as number[],
    exports: 0,
    exportMs: [] as number[],
    failed: [] as string[],
  };
  const readLoop = async (kind: 'report' | 'export') => {
    while (!stop) {
      const t0 = performance.now();
      if (kind === 'report') {
        const r = await request(
          'GET',
          '/api/v1/reports/credits?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z',
        );
        if (r.status !== 200) {
          reads.failed.push(`report: ${r.status} ${r.body.slice(0, 200)}`);
          continue;
        }
        reads.reports++;
        reads.reportMs.push(Math.round(performance.now() - t0));
      } else {
        const r = await request('GET', '/api/v1/ledger', { accept: 'text/csv' });
        if (r.status !== 200) {
          reads.failed.push(`export: ${r.status}`);
          continue;
        }
        reads.exports++;
        reads.exportMs.push(Math.round(performance.now() - t0));
      }
    }
  };
  const loops = Promise.all([readLoop('report'), readLoop('export')]);
  await new Promise((r) => setTimeout(r, 1_000));
  const busy = await debits();
  stop = true;
  await loops;
  const alone2 = await debits();
  const aloneRps = (alone1.rps + alone2.rps) / 2;
  const figures = {
    debitsPerSecondAlone: [Math.round(alone1.rps), Math.round(alone2.rps)],
    debitsPerSecondWithReplicaReads: Math.round(busy.rps),
    ratio: Number((busy.rps / aloneRps).toFixed(3)),
    goalAtLeast0_9: busy.rps / aloneRps >= 0.9,
    p99Ms: { alone: [alone1.p99, alone2.p99], busy: busy.p99 },
    reads,
  };
  console.log(
    `debits/s alone ${figures.debitsPerSecondAlone.join(' / ')}, with a report and an export on the replica ` +
      `${figures.debitsPerSecondWithReplicaReads}: ratio ${figures.ratio}`,
  );
  console.log(JSON.stringify(figures));
} finally {
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server?.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  await pair.stop();
}
