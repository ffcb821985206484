import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../../src/db/embedded.ts';
import { cleanup, createTestDatabase, tokenFor } from '../../helpers/app.ts';
import { startReceiver, waitFor } from './events-out-helpers.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** `node src/server.ts` on the database, ready to serve. */
async function startServer(
  databaseUrl: string,
  port: number,
  env: Record<string, string> = {},
): Promise<ChildProcess> {
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
      ...env,
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

  it('killed mid-pass, a replica resends only the deliveries whose answers it had not recorded', async () => {
    const databaseUrl = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    pool.on('error', () => {});
    cleanup(() => pool.end());
    await pool.query(`select credits_grant('midpass_user', 100, 'dev', null, 'seed', 'seed', '{}', null)`);
    const admin = {
      authorization: `Bearer ${tokenFor('admin_1', ['admin'])}`,
      'content-type': 'application/json',
    };
    // The receiver answers the first 10 events at once and holds every other request open.
    const receiver = await startReceiver();
    const answered = new Set<string>();
    let holdRest = true;
    receiver.respond = async (event) => {
      if (answered.has(event.id) || answered.size < 10) {
        answered.add(event.id);
        return 204;
      }
      while (holdRest) await new Promise((r) => setTimeout(r, 50));
      return 204;
    };
    const port = await freePort();
    // Attempts never time out on their own while the process lives: the 10 held ones are in flight when it dies.
    const first = await startServer(databaseUrl, port, { WEBHOOK_TIMEOUT_MS: '60000' });
    const created = await fetch(`http://127.0.0.1:${port}/api/v1/webhook-endpoints`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ url: receiver.url, events: ['credits.debited'] }),
    });
    expect(created.status).toBe(201);
    receiver.secrets.push(((await created.json()) as { data: { secret: string } }).data.secret);
    for (let i = 0; i < 20; i++) {
      await pool.query(`select credits_debit('midpass_user', 1, $1, 'h', null, '{}')`, [`midpass-${i}`]);
    }
    const delivered = async () =>
      (await pool.query(`select count(*)::int as n from webhook_deliveries where status = 'delivered'`))
        .rows[0].n as number;
    // Ten answered and recorded, each as it came, while the other ten are still in flight.
    await waitFor(async () => (await delivered()) === 10, 'ten outcomes recorded', 20_000);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const before = receiver.requests.length;
    expect(before).toBe(10);

    holdRest = false;
    // The killed process's leases (60 s + 5 s) end in the database; a restarted replica takes them then. Make
    // them due now rather than wait, as an operator's retry would.
    await pool.query(`update webhook_deliveries set next_attempt_at = now() where status = 'pending'`);
    await startServer(databaseUrl, port);
    await waitFor(() => receiver.events.size === 20, 'all twenty events', 30_000);
    await waitFor(async () => (await delivered()) === 20, 'all twenty recorded', 20_000);
    // The ten answered before the kill were sent once: only the unanswered ones went again.
    const sent = new Map<string, number>();
    for (const r of receiver.requests) {
      const id = String(r.headers['webhook-id']);
      sent.set(id, (sent.get(id) ?? 0) + 1);
    }
    for (const id of answered) expect(sent.get(id), id).toBe(1);
    expect(sent.size).toBe(20);
  }, 90_000);
});
