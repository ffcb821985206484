/**
 * `node bench/replica.ts`: debits/s on the primary alone, then while a full credits report and a full CSV export
 * run on a streaming replica (DATABASE_READ_URL). Goal: >= 0.9x.
 *
 * A throwaway primary and a standby (pg_basebackup -R, tests/helpers/replica.ts), REPLICA_ROWS entries (default
 * 1,000,000) over 1,000 accounts, each account's debits from one priced lot (so the report costs a million
 * movements). The service runs in a child process with DATABASE_URL on the primary and DATABASE_READ_URL on
 * the standby; autocannon drives debits (BENCH_CONNECTIONS, default 16) for BENCH_DURATION seconds (default
 * 10): alone, with the report and the export looping, alone again. That twice: first with every process
 * sharing every core, then with the standby on a CPU of its own and the rest on the others (taskset), which is
 * as near to a standby on its own host as one machine gets. Prints the figures and one JSON line.
 */
import { execFile as execFileCb, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { createSigner } from 'fast-jwt';
import pg from 'pg';
import { freePort } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrator.ts';
import { startReplicaPair } from '../tests/helpers/replica.ts';

const execFile = promisify(execFileCb);
const root = path.resolve(import.meta.dirname, '..');
const ROWS = Number(process.env.REPLICA_ROWS ?? 1_000_000);
const USERS = 1_000;
const PER_USER = Math.ceil(ROWS / USERS);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const secret = 'bench-replica-secret-0123456789';

/** The pid in a data directory's postmaster.pid, asked of the server itself. */
async function postmasterPid(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ dir: string }>(`select current_setting('data_directory') as dir`);
    return Number(
      (await readFile(path.join(rows[0]?.dir as string, 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
  } finally {
    await c.end();
  }
}

/** Sets the CPU affinity of a process, its threads and its children (new children inherit it). */
async function pin(pid: number, cpus: string) {
  const { stdout } = await execFile('ps', ['-o', 'pid=', '--ppid', String(pid)]).catch(() => ({
    stdout: '',
  }));
  for (const p of [
    pid,
    ...stdout
      .split('\n')
      .map(Number)
      .filter((n) => n > 0),
  ]) {
    await execFile('taskset', ['-a', '-p', '-c', cpus, String(p)]).catch(() => {});
  }
}

/**
 * The standby's server on the last CPU, the primary, the service and this process (the load) on the others;
 * undefined where that cannot be done (one CPU, no taskset).
 */
async function pinStandbyApart(p: typeof pair, servicePid: number) {
  const cpus = availableParallelism();
  if (cpus < 2) return undefined;
  const standby = String(cpus - 1);
  const rest = cpus === 2 ? '0' : `0-${cpus - 2}`;
  try {
    await execFile('taskset', ['-p', '-c', rest, String(process.pid)]);
  } catch {
    return undefined;
  }
  await pin(await postmasterPid(p.standbyUrl), standby);
  await pin(await postmasterPid(p.primaryUrl), rest);
  await pin(servicePid, rest);
  return { standby, rest };
}

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

  /** Debits alone, with a report and an export looping on the standby, then alone again. */
  const measure = async () => {
    await debits(); // warm-up
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
    return {
      debitsPerSecondAlone: [Math.round(alone1.rps), Math.round(alone2.rps)],
      debitsPerSecondWithReplicaReads: Math.round(busy.rps),
      ratio: Number((busy.rps / aloneRps).toFixed(3)),
      goalAtLeast0_9: busy.rps / aloneRps >= 0.9,
      p99Ms: { alone: [alone1.p99, alone2.p99], busy: busy.p99 },
      reads,
    };
  };

  // 1. As the processes come: the primary, the standby, the service and the load share every core, so the
  // standby's report takes CPU from the primary, which a standby on its own host would not.
  const shared = await measure();
  console.log(
    `shared cores: debits/s alone ${shared.debitsPerSecondAlone.join(' / ')}, with a report and an export ` +
      `on the replica ${shared.debitsPerSecondWithReplicaReads}: ratio ${shared.ratio}`,
  );
  // 2. The standby on a core of its own, everything else on the others: two hosts, as far as one machine can
  // be. The export's bytes still pass through the service, beside the debits, as they would in production.
  const pinned = await pinStandbyApart(pair, server.pid as number);
  const apart = pinned ? await measure() : undefined;
  if (apart) {
    console.log(
      `standby on cpu ${pinned?.standby}, the rest on ${pinned?.rest}: debits/s alone ` +
        `${apart.debitsPerSecondAlone.join(' / ')}, with a report and an export on the replica ` +
        `${apart.debitsPerSecondWithReplicaReads}: ratio ${apart.ratio}`,
    );
  }
  console.log(JSON.stringify({ sharedCores: shared, standbyOnItsOwnCore: apart ?? null, pinned }));
} finally {
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server?.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  await pair.stop();
}
