import { randomBytes } from 'node:crypto';
import { appendFile, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MIGRATIONS_DIR, migrate, readMigrations } from '../../src/db/migrator.ts';

const created: string[] = [];
const tempDirs: string[] = [];

/** A new, empty database (not from the template): what a first deployment sees. */
async function emptyDatabase(): Promise<string> {
  const name = `credits_mig_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  created.push(name);
  const u = new URL(inject('adminUrl'));
  u.pathname = `/${name}`;
  return u.toString();
}

async function query<T>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

async function copyOfMigrations(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-migrations-'));
  tempDirs.push(dir);
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

afterAll(async () => {
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  for (const name of created)
    await admin.query(`drop database if exists ${name} with (force)`).catch(() => {});
  await admin.end();
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

describe('migrate', () => {
  it('applies each migration exactly once when several runners start at once on an empty database', async () => {
    const url = await emptyDatabase();
    const expected = (await readMigrations()).map((m) => m.name);
    expect(expected.length).toBeGreaterThan(0);

    const results = await Promise.all([migrate(url), migrate(url), migrate(url), migrate(url)]);
    // Together they applied every migration, and no migration twice.
    const appliedNames = results.flat();
    expect([...appliedNames].sort()).toEqual([...expected].sort());
    // The lock serialises them: one runner did all the work, the others found nothing to do.
    expect(results.filter((r) => r.length > 0)).toHaveLength(1);

    const rows = await query<{ version: number; name: string; checksum: string }>(
      url,
      'select version, name, checksum from schema_migrations order by version',
    );
    expect(rows.map((r) => r.name)).toEqual(expected);
    for (const r of rows) expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
    // The schema is there.
    const tables = await query<{ table_name: string }>(
      url,
      "select table_name from information_schema.tables where table_schema = 'public'",
    );
    expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['api_keys', 'ledger_entries']));

    // Running again applies nothing.
    expect(await migrate(url)).toEqual([]);
  });

  it('applies only the new migration on a later run', async () => {
    const url = await emptyDatabase();
    const dir = await copyOfMigrations();
    await migrate(url, dir);
    await writeFile(
      path.join(dir, '900_added_later.sql'),
      'create table added_later (id int primary key);\n',
    );
    expect(await migrate(url, dir)).toEqual(['900_added_later.sql']);
    const rows = await query<{ version: number }>(
      url,
      'select version from schema_migrations where version = 900',
    );
    expect(rows).toHaveLength(1);
  });

  it('refuses a migration edited after it was applied, naming it', async () => {
    const url = await emptyDatabase();
    const dir = await copyOfMigrations();
    const first = (await readMigrations(dir))[0]!;
    expect((await migrate(url, dir)).length).toBeGreaterThan(0);

    await appendFile(path.join(dir, first.name), '\n-- an innocent-looking edit\n');
    await writeFile(path.join(dir, '901_after_edit.sql'), 'create table after_edit (id int);\n');
    await expect(migrate(url, dir)).rejects.toThrow(new RegExp(`${first.name}.*edited`));

    // Nothing further was applied, and the lock was released: the untouched directory still migrates.
    const rows = await query<{ n: number }>(
      url,
      'select count(*)::int as n from schema_migrations where version = 901',
    );
    expect(rows[0]?.n).toBe(0);
    expect(await migrate(url)).toEqual([]);
  });

  it('rolls back a failing migration as a whole and reports it', async () => {
    const url = await emptyDatabase();
    const dir = await copyOfMigrations();
    await migrate(url, dir);
    await writeFile(
      path.join(dir, '902_broken.sql'),
      'create table half_done (id int);\nselect * from no_such_table_here;\n',
    );
    await expect(migrate(url, dir)).rejects.toThrow(/902_broken\.sql failed/);
    const half = await query<{ n: number }>(
      url,
      "select count(*)::int as n from information_schema.tables where table_name = 'half_done'",
    );
    expect(half[0]?.n).toBe(0);
    const recorded = await query<{ n: number }>(
      url,
      'select count(*)::int as n from schema_migrations where version = 902',
    );
    expect(recorded[0]?.n).toBe(0);
  });
});
