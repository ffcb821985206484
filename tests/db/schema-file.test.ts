import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrate, readMigrations } from '../../src/db/migrator.ts';
import { differingFiles, dumpSchemaOf, readSchemaFiles, SCHEMA_COMMAND } from '../../src/db/schema-dump.ts';
import { createEmptyDatabase, createTestDatabase } from '../helpers/app.ts';

async function schemaOf(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await dumpSchemaOf(client, await readMigrations());
  } finally {
    await client.end();
  }
}

describe('db/schema.sql and db/functions/', () => {
  it('hold what a freshly migrated database has', async () => {
    const url = await createEmptyDatabase();
    await migrate(url);
    const generated = await schemaOf(url);
    const committed = await readSchemaFiles();
    const stale = differingFiles(committed, generated);
    expect(stale, `stale: ${stale.map((f) => `db/${f}`).join(', ')}; run \`${SCHEMA_COMMAND}\``).toEqual([]);
    // The same, file by file, so a failure shows the lines that differ.
    for (const name of stale) expect(committed.get(name), `db/${name}`).toBe(generated.get(name));
  });

  it('name every function, and each function file holds one function of that name', async () => {
    const committed = await readSchemaFiles();
    const schema = committed.get('schema.sql') ?? '';
    for (const name of committed.keys()) {
      if (name === 'schema.sql') continue;
      const fn = name.replace(/^functions\/(.*)\.sql$/, '$1');
      expect(schema).toContain(`db/functions/${fn}.sql`);
      expect(committed.get(name)).toMatch(new RegExp(`CREATE OR REPLACE FUNCTION public\\.${fn}\\(`));
    }
  });

  it('no longer has the functions nothing calls (016_drop_dead_functions.sql)', async () => {
    const url = await createTestDatabase();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ name: string }>(
      `select proname as name from pg_proc where pronamespace = 'public'::regnamespace
       union all select typname from pg_type where typnamespace = 'public'::regnamespace`,
    );
    await client.end();
    const names = rows.map((r) => r.name);
    expect(names).toContain('credits_ledger_many');
    expect(names).not.toContain('credits_debit_many');
    expect(names).not.toContain('credits_entry_json');
    expect(names).not.toContain('ledger_result');
  });
});
