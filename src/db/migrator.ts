import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
// Any constant works; it only has to be the same for every replica.
const MIGRATION_LOCK_ID = 72_007_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_[\w-]+\.sql$/.test(f)).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const sql = await readFile(path.join(dir, file), 'utf8');
    migrations.push({
      version: Number.parseInt(file, 10),
      name: file,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  const versions = new Set(migrations.map((m) => m.version));
  if (versions.size !== migrations.length) throw new Error('Two migrations share a version number');
  return migrations;
}

const CREATE_TABLE = `create table if not exists schema_migrations (
  version integer primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
)`;

/**
 * `checksums.json` beside the migrations: `applied`, the checksum of every migration as committed (a test
 * holds the files to it), and `superseded`, earlier checksums of a file that was edited after databases had
 * applied it, which such a database may keep (a later migration brings it up to date).
 */
export interface ChecksumList {
  applied: Record<string, string>;
  superseded: Record<string, string[]>;
}

export async function readChecksumList(dir = MIGRATIONS_DIR): Promise<ChecksumList> {
  try {
    const parsed = JSON.parse(
      await readFile(path.join(dir, 'checksums.json'), 'utf8'),
    ) as Partial<ChecksumList>;
    return { applied: parsed.applied ?? {}, superseded: parsed.superseded ?? {} };
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return { applied: {}, superseded: {} };
    throw err;
  }
}

/**
 * Applies every pending migration in one transaction under a transaction-level advisory lock, so replicas
 * starting at once apply each migration exactly once, through a direct connection or a pooler in
 * transaction mode alike (a session lock would stay on whichever server connection the pooler lent, and
 * another replica's transaction could run beside it). Refuses to run when an applied migration's file
 * has changed, unless the recorded checksum is a known earlier one (`superseded`).
 */
export async function migrate(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await readMigrations(dir);
  const { superseded } = await readChecksumList(dir);
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: 'credits-migrator',
    connectionTimeoutMillis: 10_000,
  });
  // A connection lost while migrating fails the query it runs; without a listener it would crash the process.
  client.on('error', () => {});
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
    await client.query(CREATE_TABLE);
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
      'select version, name, checksum from schema_migrations',
    );
    const done = new Map(rows.map((r) => [r.version, r]));
    for (const m of migrations) {
      const prior = done.get(m.version);
      if (prior) {
        if (prior.checksum !== m.checksum && !superseded[m.name]?.includes(prior.checksum)) {
          throw new Error(
            `Migration ${m.name} was edited after it was applied (checksum differs); add a new one`,
          );
        }
        continue;
      }
      try {
        await client.query(m.sql);
        await client.query('insert into schema_migrations (version, name, checksum) values ($1, $2, $3)', [
          m.version,
          m.name,
          m.checksum,
        ]);
      } catch (err) {
        throw new Error(`Migration ${m.name} failed: ${(err as Error).message}`);
      }
      applied.push(m.name);
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
  return applied;
}

/** Migrations not yet applied (for readiness); throws when the database cannot be reached. */
export async function pendingMigrations(
  query: (sql: string) => Promise<{ rows: unknown[] }>,
): Promise<number> {
  const expected = await readMigrations();
  const { rows } = await query('select version from schema_migrations');
  const have = new Set((rows as { version: number }[]).map((r) => r.version));
  return expected.filter((m) => !have.has(m.version)).length;
}
