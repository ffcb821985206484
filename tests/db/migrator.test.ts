import { randomBytes } from 'node:crypto';
import { appendFile, copyFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MIGRATIONS_DIR, migrate, readChecksumList, readMigrations } from '../../src/db/migrator.ts';
import { asAdmin, buildTestApp, grant } from '../helpers/app.ts';

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

/** Every function of the public schema with its full definition: what a database runs. */
async function functionDefinitions(url: string) {
  return query<{ signature: string; definition: string }>(
    url,
    `select p.oid::regprocedure::text as signature, pg_get_functiondef(p.oid) as definition
     from pg_proc p where p.pronamespace = 'public'::regnamespace order by 1`,
  );
}

describe('a database migrated before 003_ledger.sql was edited', () => {
  it('starts, and converges to the functions a new database gets', async () => {
    // 003 as first committed (6d3e986): the migrations directory of that commit.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-migrations-old-'));
    tempDirs.push(dir);
    for (const m of await readMigrations()) {
      if (m.version < 5 && m.version !== 3)
        await copyFile(path.join(MIGRATIONS_DIR, m.name), path.join(dir, m.name));
    }
    const original = new URL('../fixtures/migrations/003_ledger.6d3e986.sql', import.meta.url);
    await copyFile(original, path.join(dir, '003_ledger.sql'));
    const old = await emptyDatabase();
    await migrate(old, dir);
    expect((await functionDefinitions(old)).map((f) => f.signature)).toContain(
      'credits_debit_many(text,jsonb)',
    );

    // Today's migrations accept the earlier 003 and apply what came after it.
    const applied = await migrate(old);
    expect(applied).toEqual((await readMigrations()).filter((m) => m.version > 4).map((m) => m.name));
    const fresh = await emptyDatabase();
    await migrate(fresh);
    expect(await functionDefinitions(old)).toEqual(await functionDefinitions(fresh));

    // And the service runs on it: single and batched debits (credits_ledger_many), replays.
    const t = await buildTestApp({ DEBIT_CALLS_IN_FLIGHT: '1' }, old);
    await grant(t.app, 'old_db_user', 50);
    const debit = (key: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/accounts/old_db_user/debits',
        headers: { ...asAdmin(), 'idempotency-key': key },
        payload: { amount: 2 },
      });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => debit(`old-${i}`)));
    for (const res of answers) expect(res.statusCode).toBe(201);
    const replay = await debit('old-3');
    expect(replay.statusCode).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    const balance = await query<{ balance: number }>(
      old,
      "select balance from accounts where user_id = 'old_db_user'",
    );
    expect(Number(balance[0]?.balance)).toBe(30);
  });
});

describe('migrations/checksums.json', () => {
  it('holds every committed migration to the checksum it was committed with', async () => {
    const { applied } = await readChecksumList();
    const files = new Map((await readMigrations()).map((m) => [m.name, m.checksum]));
    expect(Object.keys(applied).length).toBeGreaterThanOrEqual(5);
    // A new migration is listed in the commit that adds it, so that the next edit of it is caught.
    for (const [name, checksum] of files) {
      expect(applied[name], `add "${name}": "${checksum}" to migrations/checksums.json`).toBeDefined();
    }
    for (const [name, checksum] of Object.entries(applied)) {
      // A migration that has been applied somewhere never changes: a function changes in a new numbered file.
      expect(files.get(name), `${name} was edited or removed after it was committed`).toBe(checksum);
    }
  });

  it('fails when a listed migration is edited', async () => {
    const dir = await copyOfMigrations();
    const { applied } = await readChecksumList(dir);
    await appendFile(path.join(dir, '002_packages_purchases.sql'), '\n-- tidy up\n');
    const files = new Map((await readMigrations(dir)).map((m) => [m.name, m.checksum]));
    expect(files.get('002_packages_purchases.sql')).not.toBe(applied['002_packages_purchases.sql']);
    // The list itself is plain JSON a reviewer can read.
    expect(JSON.parse(await readFile(path.join(dir, 'checksums.json'), 'utf8'))).toHaveProperty('superseded');
  });
});
