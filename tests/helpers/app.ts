import { randomBytes } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import pg from 'pg';
import { afterAll, inject, onTestFinished } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { DEV_JWT_SECRET, loadConfig } from '../../src/config.ts';
import type { App } from '../../src/http/types.ts';

/**
 * Runs `fn` when the current test ends if called inside a test, else when the file's tests end (from
 * beforeAll or the top level). An `afterAll` registered inside a running test never runs: apps built in
 * tests kept their pools open and their databases were never dropped.
 */
export function cleanup(fn: () => Promise<void>) {
  try {
    onTestFinished(fn);
  } catch {
    afterAll(fn);
  }
}

/** A fresh database cloned from the migrated template; dropped when the test (or the file) ends. */
export async function createTestDatabase(): Promise<string> {
  const name = `${inject('testDbPrefix')}${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.query(`create database ${name} template ${inject('templateDb')}`);
      break;
    } catch (err) {
      // Two files cloning the template at the same instant: Postgres asks one to wait.
      if (attempt > 20 || !/being accessed by other users/.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
    }
  }
  await admin.end();
  cleanup(async () => {
    const c = new pg.Client({ connectionString: inject('adminUrl') });
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`).catch(() => {});
    await c.end();
  });
  const u = new URL(inject('adminUrl'));
  u.pathname = `/${name}`;
  return u.toString();
}

export interface TestApp {
  app: App;
  databaseUrl: string;
  /** A raw pg pool on the same database, for assertions the API does not expose. */
  pg: pg.Pool;
}

export interface BuildTestAppOptions {
  /** Runs after buildApp and before ready, e.g. to register an extra route for a test. */
  beforeReady?: (app: App) => void | Promise<void>;
}

/** Builds the app on its own fresh database, with `env` over test defaults. Closed after the file. */
export async function buildTestApp(
  env: Record<string, string> = {},
  databaseUrl?: string,
  options: BuildTestAppOptions = {},
): Promise<TestApp> {
  const url = databaseUrl ?? (await createTestDatabase());
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    RATE_LIMIT_PER_MINUTE: '0',
    AUTH_FAILURES_PER_MINUTE: '0',
    DATABASE_URL: url,
    DATABASE_POOL_SIZE: '10',
    ...env,
  });
  const app = await buildApp(config);
  await options.beforeReady?.(app);
  await app.ready();
  const pool = new pg.Pool({ connectionString: url, max: 3 });
  // pool.end() resolves before its sockets have closed; the `drop database ... with (force)` that follows can
  // then reach a closing connection as a FATAL 57P01, which an unheard pool 'error' turns into an uncaught
  // exception that fails the run after every test has passed.
  pool.on('error', () => {});
  cleanup(async () => {
    await app.close();
    await pool.end();
  });
  return { app, databaseUrl: url, pg: pool };
}

const signer = createSigner({ key: DEV_JWT_SECRET, algorithm: 'HS256', expiresIn: 3_600_000 });

/** A development-secret JWT for `sub`, with roles. */
export function tokenFor(sub: string, roles: string[] = []): string {
  return signer({ sub, ...(roles.length ? { roles } : {}) });
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
export const asUser = (sub: string) => bearer(tokenFor(sub));
export const asAdmin = () => bearer(tokenFor('admin_1', ['admin']));

/** Creates an API key through the API (as admin) and returns it in clear. */
export async function createApiKey(app: App, scopes: string[], name = 'test key'): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/api-keys',
    headers: asAdmin(),
    payload: { name, scopes },
  });
  if (res.statusCode !== 201) throw new Error(`api key create failed: ${res.body}`);
  return res.json().data.key as string;
}

/** Grants credits directly through the ledger service (the API has no grant route outside the providers). */
export async function grant(
  app: App,
  userId: string,
  amount: number,
  opts: { expiresAt?: Date | null; key?: string } = {},
) {
  return app.services.ledger.grant(
    {
      userId,
      amount,
      source: 'dev',
      purchaseId: null,
      idempotencyKey: opts.key ?? `test-grant-${randomBytes(8).toString('hex')}`,
      reason: 'test grant',
      expiresAt: opts.expiresAt ?? null,
    },
    app.db,
  );
}

/** A user's balance as an admin reads it through the API (`at` for a past time): the whole answer's `data`. */
export async function balanceOf(app: App, userId: string, at?: string) {
  const res = await app.inject({
    method: 'GET',
    url: `/api/v1/accounts/${userId}/balance`,
    headers: asAdmin(),
    query: at === undefined ? {} : { at },
  });
  if (res.statusCode !== 200) throw new Error(`balance read failed: ${res.statusCode} ${res.body}`);
  return res.json().data as {
    userId: string;
    balance: number;
    available: number;
    held: number;
    updatedAt: string | null;
    expiringSoon: { credits: number; expiresAt: string }[];
  };
}

/** `url` through the test PgBouncer (transaction mode); undefined when PgBouncer is not installed. */
export function throughPgBouncer(url: string): string | undefined {
  const address = inject('pgbouncer');
  if (!address) return undefined;
  const u = new URL(url);
  u.host = address;
  return u.toString();
}

/** A new, empty database (not from the migrated template): what a first deployment sees. Dropped like the others. */
export async function createEmptyDatabase(): Promise<string> {
  const name = `${inject('testDbPrefix')}${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  cleanup(async () => {
    const c = new pg.Client({ connectionString: inject('adminUrl') });
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`).catch(() => {});
    await c.end();
  });
  const u = new URL(inject('adminUrl'));
  u.pathname = `/${name}`;
  return u.toString();
}
