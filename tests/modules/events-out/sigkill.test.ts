import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../../src/db/embedded.ts';
import { cleanup, createTestDatabase, tokenFor } from '../../helpers/app.ts';
import { startReceiver, waitFor } from './events-out-helpers.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** `node src/server.ts` on the database, ready to serve. */
async function startServer(databaseUrl: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      EXPIRY_SWEEP_INTERVAL_MS: '0',
      WEBHOOK_POLL_INTERVAL_MS: '20',
      WEBHOOK_RETRY_SCHEDULE: '100ms,100ms,100ms,100ms,100ms',
      // A delivery claimed by the killed process is claimable again after its lease: this + 5 s.
      WEBHOOK_TIMEOUT_MS: '1000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  child.stdout?.on('data', (d) => (logs += d));
  child.stderr?.on('data', (d) => (logs += d));
  cleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${logs}`);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    if (ready?.ok) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not become ready:\n${logs}`);
}

describe('events survive a SIGKILL between the commit and the delivery', () => {
  it('a debit committed right before the process is killed is delivered after the restart', async () => {
    const databaseUrl = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    pool.on('error', () => {});
    cleanup(() => pool.end());
    await pool.query(`select credits_grant('killed_user', 100, 'dev', null, 'seed', 'seed', '{}', null)`);
    const admin = {
      authorization: `Bearer ${tokenFor('admin_1', ['admin'])}`,
      'content-type': 'application/json',
    };

    // The receiver is not up yet: whatever the first process tries cannot reach it.
    const receiverPort = await freePort();
    const port = await freePort();
    const first = await startServer(databaseUrl, port);
    const base = `http://127.0.0.1:${port}/api/v1`;
    const created = await fetch(`${base}/webhook-endpoints`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ url: `http://127.0.0.1:${receiverPort}/hooks`, events: ['credits.debited'] }),
    });
    expect(created.status).toBe(201);
    const { secret } = ((await created.json()) as { data: { secret: string } }).data;

    const debit = await fetch(`${base}/accounts/killed_user/debits`, {
      method: 'POST',
      headers: { ...admin, 'idempotency-key': 'killed-debit' },
      body: JSON.stringify({ amount: 7 }),
    });
    expect(debit.status).toBe(201);
    first.kill('SIGKILL'); // right after the commit, before any delivery could reach the receiver
    await new Promise((resolve) => first.once('exit', resolve));
    const entryId = ((await debit.json()) as { data: { entry: { id: string } } }).data.entry.id;

    // The change and its event committed together.
    const { rows } = await pool.query(
      `select e.type, e.data->'entry'->>'id' as entry_id from events e where e.type = 'credits.debited'`,
    );
    expect(rows).toEqual([{ type: 'credits.debited', entry_id: entryId }]);

    const receiver = await startReceiver(receiverPort);
    receiver.secrets.push(secret);
    await startServer(databaseUrl, port);
    await waitFor(() => receiver.events.size === 1, 'the debit event after the restart', 20_000);
    const [event] = [...receiver.events.values()];
    expect(event).toMatchObject({ type: 'credits.debited', data: { entry: { id: entryId, amount: -7 } } });
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
  }, 60_000);
});
