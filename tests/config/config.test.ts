import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEV_JWT_SECRET, loadConfig } from '../../src/config.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROD_SECRET = 'a-production-secret-that-is-long-enough-0123456789';
const PROD = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://credits@db.internal:5432/credits',
  JWT_SECRET: PROD_SECRET,
};

/** Asserts loadConfig refuses `env` with a ConfigError naming `variable` in its message. */
function expectRefused(env: Record<string, string | undefined>, variable: string): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const err = caught as ConfigError;
  expect(err.variable).toBe(variable);
  expect(err.message).toContain(variable);
  return err;
}

describe('loadConfig', () => {
  it('has the documented defaults outside production', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      // The development JWT secret is public: outside production the service stays on loopback.
      host: '127.0.0.1',
      nodeEnv: 'development',
      logLevel: 'info',
      databaseUrl: undefined,
      dataDir: './.data',
      allowDevPurchases: false,
      corsOrigins: [],
      metricsToken: undefined,
      rateLimit: { perMinute: 600, apiKeyPerMinute: 0 },
      debitCallsInFlight: 2,
      webhooks: { concurrency: 128, endpointConcurrency: 64 },
      holdSweepIntervalMs: 10_000,
      revenuecat: { webhookAuth: undefined, allowSandbox: false },
      databaseMigrationUrl: undefined,
      databaseQueryTimeoutMs: 10_000,
      databasePooler: 'none',
    });
    expect(config.jwt.secret).toBe(DEV_JWT_SECRET);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.jwt)).toBe(true);
  });

  it('reads and converts values', () => {
    const config = loadConfig({
      PORT: '8080',
      RATE_LIMIT_PER_MINUTE: '0',
      RATE_LIMIT_API_KEY_PER_MINUTE: '50',
      CORS_ORIGINS: 'https://a.example.com, https://b.example.com',
      ALLOW_DEV_PURCHASES: 'true',
      STRIPE_API_URL: 'http://127.0.0.1:12111',
      DEBIT_CALLS_IN_FLIGHT: '3',
    });
    expect(config.port).toBe(8080);
    expect(config.debitCallsInFlight).toBe(3);
    expect(config.rateLimit).toEqual({ perMinute: 0, apiKeyPerMinute: 50 });
    expect(config.corsOrigins).toEqual(['https://a.example.com', 'https://b.example.com']);
    expect(config.allowDevPurchases).toBe(true);
    expect(config.stripe.apiUrl).toBe('http://127.0.0.1:12111');
  });

  it('reads WEBHOOK_ENDPOINT_CONCURRENCY, never above WEBHOOK_CONCURRENCY', () => {
    expect(loadConfig({ WEBHOOK_ENDPOINT_CONCURRENCY: '8' }).webhooks).toMatchObject({
      concurrency: 128,
      endpointConcurrency: 8,
    });
    expect(
      loadConfig({ WEBHOOK_CONCURRENCY: '16', WEBHOOK_ENDPOINT_CONCURRENCY: '64' }).webhooks,
    ).toMatchObject({ concurrency: 16, endpointConcurrency: 16 });
    expect(() => loadConfig({ WEBHOOK_ENDPOINT_CONCURRENCY: '0' })).toThrow(/WEBHOOK_ENDPOINT_CONCURRENCY/);
  });

  it('reads HOLD_SWEEP_INTERVAL_MS (0 turns the sweeper off) and refuses a bad one, naming it', () => {
    expect(loadConfig({ HOLD_SWEEP_INTERVAL_MS: '0' }).holdSweepIntervalMs).toBe(0);
    expect(loadConfig({ HOLD_SWEEP_INTERVAL_MS: '2500' }).holdSweepIntervalMs).toBe(2500);
    expectRefused({ HOLD_SWEEP_INTERVAL_MS: '-1' }, 'HOLD_SWEEP_INTERVAL_MS');
    expectRefused({ HOLD_SWEEP_INTERVAL_MS: 'soon' }, 'HOLD_SWEEP_INTERVAL_MS');
  });

  it('listens on 0.0.0.0 in production and wherever HOST says', () => {
    expect(loadConfig(PROD).host).toBe('0.0.0.0');
    expect(loadConfig({ ...PROD, HOST: '10.0.0.5' }).host).toBe('10.0.0.5');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });

  it('reads the database pooler settings and refuses them without DATABASE_URL', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@pgbouncer:6432/credits',
      DATABASE_MIGRATION_URL: 'postgres://u@db:5432/credits',
      DATABASE_POOLER: 'transaction',
      DATABASE_QUERY_TIMEOUT_MS: '3000',
    });
    expect(config).toMatchObject({
      databaseMigrationUrl: 'postgres://u@db:5432/credits',
      databasePooler: 'transaction',
      databaseQueryTimeoutMs: 3000,
    });
    expectRefused({ DATABASE_MIGRATION_URL: 'postgres://u@db:5432/credits' }, 'DATABASE_MIGRATION_URL');
    expectRefused({ DATABASE_POOLER: 'transaction' }, 'DATABASE_POOLER');
    expectRefused({ DATABASE_URL: 'postgres://u@h/d', DATABASE_POOLER: 'session' }, 'DATABASE_POOLER');
    expectRefused({ DATABASE_QUERY_TIMEOUT_MS: '0' }, 'DATABASE_QUERY_TIMEOUT_MS');
  });

  it('accepts a complete production configuration (HS256 secret or public key)', () => {
    const config = loadConfig(PROD);
    expect(config.nodeEnv).toBe('production');
    expect(config.jwt.secret).toBe(PROD_SECRET);
    expect(config.allowDevPurchases).toBe(false);
    const { publicKey } = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const withKey = loadConfig({ ...PROD, JWT_SECRET: undefined, JWT_PUBLIC_KEY: publicKey });
    expect(withKey.jwt.secret).toBeUndefined();
    expect(withKey.jwt.publicKey).toBe(publicKey);
  });

  describe('refuses production without its requirements or with dev defaults', () => {
    it('requires DATABASE_URL', () => {
      expectRefused({ ...PROD, DATABASE_URL: undefined }, 'DATABASE_URL');
      expectRefused({ ...PROD, DATABASE_URL: '' }, 'DATABASE_URL');
    });

    it('requires a JWT key', () => {
      const err = expectRefused({ ...PROD, JWT_SECRET: undefined }, 'JWT_SECRET');
      expect(err.message).toContain('JWT_PUBLIC_KEY');
    });

    it('refuses the development JWT secret', () => {
      expectRefused({ ...PROD, JWT_SECRET: DEV_JWT_SECRET }, 'JWT_SECRET');
    });

    it('refuses a short JWT secret', () => {
      expectRefused({ ...PROD, JWT_SECRET: 'only-twenty-chars-xx' }, 'JWT_SECRET');
    });

    it('refuses ALLOW_DEV_PURCHASES=true', () => {
      expectRefused({ ...PROD, ALLOW_DEV_PURCHASES: 'true' }, 'ALLOW_DEV_PURCHASES');
      expect(loadConfig({ ...PROD, ALLOW_DEV_PURCHASES: 'false' }).allowDevPurchases).toBe(false);
    });

    it('refuses REVENUECAT_ALLOW_SANDBOX=true', () => {
      expectRefused({ ...PROD, REVENUECAT_ALLOW_SANDBOX: 'true' }, 'REVENUECAT_ALLOW_SANDBOX');
    });
  });

  describe('names the variable of an invalid value', () => {
    const cases: [string, string][] = [
      ['PORT', 'abc'],
      ['PORT', '70000'],
      ['RATE_LIMIT_PER_MINUTE', '-1'],
      ['RATE_LIMIT_PER_MINUTE', 'lots'],
      ['PORT', '1.5'],
      ['RATE_LIMIT_API_KEY_PER_MINUTE', '1.5'],
      ['RATE_LIMIT_PER_MINUTE', '1e2'],
      ['DATABASE_POOL_SIZE', '0'],
      ['DEBIT_CALLS_IN_FLIGHT', '0'],
      ['STRIPE_API_URL', 'notaurl'],
      ['CHECKOUT_SUCCESS_URL', 'example.com/ok'],
      ['DATABASE_URL', 'mysql://db/credits'],
      ['NODE_ENV', 'staging'],
      ['LOG_LEVEL', 'loud'],
      ['ALLOW_DEV_PURCHASES', 'yes'],
      ['REVENUECAT_ALLOW_SANDBOX', '1'],
      ['JWT_SECRET', 'short'],
      ['JWT_PUBLIC_KEY', 'not a pem'],
    ];
    it.each(cases)('%s=%s', (variable, value) => {
      expectRefused({ [variable]: value }, variable);
    });

    it('refuses both JWT_SECRET and JWT_PUBLIC_KEY', () => {
      const { publicKey } = generateKeyPairSync('ec', {
        namedCurve: 'P-256',
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      });
      expectRefused({ JWT_SECRET: PROD_SECRET, JWT_PUBLIC_KEY: publicKey }, 'JWT_SECRET');
    });
  });
});

/** Runs `node src/server.ts` with exactly `env` (plus PATH); resolves with its exit code and output. */
function runServer(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/server.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not exit in time; output so far:\n${output}`));
    }, 20_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('the real server', () => {
  it('refuses to start in production with ALLOW_DEV_PURCHASES=true, naming the variable', async () => {
    const { code, output } = await runServer({
      NODE_ENV: 'production',
      ALLOW_DEV_PURCHASES: 'true',
      // Never reached: the configuration is refused first.
      DATABASE_URL: 'postgres://credits@127.0.0.1:1/credits',
      JWT_SECRET: PROD_SECRET,
    });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(output).toContain('ALLOW_DEV_PURCHASES');
  });

  it('refuses to start with an invalid PORT, naming the variable', async () => {
    const { code, output } = await runServer({
      PORT: 'abc',
      DATABASE_URL: 'postgres://credits@127.0.0.1:1/x',
    });
    expect(code).not.toBe(0);
    expect(output).toContain('PORT');
  });
});
