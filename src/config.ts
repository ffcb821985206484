import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { isIP } from 'node:net';

/** The development JWT secret: accepted outside production only, and what `npm run token` signs with. */
export const DEV_JWT_SECRET = 'dev-only-insecure-jwt-secret-change-me';

/** RevenueCat's REST API (v1), used by the purchase sync. */
export const REVENUECAT_API_URL = 'https://api.revenuecat.com';

/** Waits before the 2nd, 3rd, ... attempt of a webhook delivery; after the last one fails, the delivery fails. */
const DEFAULT_RETRY_SCHEDULE = '5s,5m,30m,2h,5h,10h,10h';

const Bool = Type.Union([Type.Literal('true'), Type.Literal('false')]);
const Url = Type.String({ pattern: '^https?://[^\\s]+$' });

/** The environment the service reads (docs/configuration.md); every value arrives as a string. */
export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  /** Default: 127.0.0.1, or 0.0.0.0 when NODE_ENV=production (outside production the JWT secret is public). */
  HOST: Type.Optional(Type.String({ minLength: 1 })),
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('test'), Type.Literal('production')], {
    default: 'development',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_MIGRATION_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 20 }),
  DATABASE_QUERY_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
  DATABASE_POOLER: Type.Union([Type.Literal('none'), Type.Literal('transaction')], { default: 'none' }),
  /** A streaming replica: balance history, the credits report and CSV exports read from it (CONTRACT 15). */
  DATABASE_READ_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_READ_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 100, default: 4 }),
  DATA_DIR: Type.String({ minLength: 1, default: './.data' }),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  JWT_PUBLIC_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN (RSA |EC )?PUBLIC KEY-----' })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  STRIPE_SECRET_KEY: Type.Optional(Type.String({ minLength: 1 })),
  STRIPE_WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  STRIPE_API_URL: Type.Optional(Url),
  STRIPE_RECONCILE_INTERVAL_MS: Type.Integer({ minimum: 0, default: 600_000 }),
  CHECKOUT_SUCCESS_URL: Type.Optional(Url),
  CHECKOUT_CANCEL_URL: Type.Optional(Url),
  CHECKOUT_ALLOWED_ORIGINS: Type.Optional(Type.String()),
  REVENUECAT_WEBHOOK_AUTH: Type.Optional(Type.String({ minLength: 1 })),
  REVENUECAT_ALLOW_SANDBOX: Type.Optional(Bool),
  REVENUECAT_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  REVENUECAT_API_URL: Type.String({ pattern: '^https?://[^\\s]+$', default: REVENUECAT_API_URL }),
  ALLOW_DEV_PURCHASES: Type.Optional(Bool),
  CORS_ORIGINS: Type.Optional(Type.String()),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 0, default: 600 }),
  RATE_LIMIT_API_KEY_PER_MINUTE: Type.Integer({ minimum: 0, default: 0 }),
  AUTH_FAILURES_PER_MINUTE: Type.Integer({ minimum: 0, default: 60 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000 }),
  EXPIRY_SWEEP_INTERVAL_MS: Type.Integer({ minimum: 0, default: 60_000 }),
  HOLD_SWEEP_INTERVAL_MS: Type.Integer({ minimum: 0, default: 10_000 }),
  DEBIT_CALLS_IN_FLIGHT: Type.Integer({ minimum: 1, maximum: 64, default: 2 }),
  WEBHOOK_ALLOW_PRIVATE_URLS: Type.Optional(Bool),
  WEBHOOK_POLL_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 1000 }),
  WEBHOOK_RETRY_SCHEDULE: Type.String({ minLength: 1, default: DEFAULT_RETRY_SCHEDULE }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 10_000 }),
  WEBHOOK_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 128 }),
  WEBHOOK_ENDPOINT_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 64 }),
  TRUST_PROXY: Type.Optional(Type.String({ minLength: 1 })),
  DOCS_ENABLED: Type.Optional(Bool),
  STRIPE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 5_000 }),
  EVENTS_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
});
type Env = Static<typeof EnvSchema>;

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly nodeEnv: 'development' | 'test' | 'production';
  readonly logLevel: string;
  readonly databaseUrl: string | undefined;
  /** A direct (unpooled) connection for migrations; unset: databaseUrl. */
  readonly databaseMigrationUrl: string | undefined;
  readonly databasePoolSize: number;
  /** A query with no answer by then fails on the client side (503), even when the server is frozen. */
  readonly databaseQueryTimeoutMs: number;
  /** `transaction`: databaseUrl goes through a pooler in transaction mode (PgBouncer, RDS Proxy, Supavisor). */
  readonly databasePooler: 'none' | 'transaction';
  /** DATABASE_READ_URL: where reports and CSV exports read (a streaming replica); unset: the primary. */
  readonly databaseReadUrl: string | undefined;
  readonly databaseReadPoolSize: number;
  /** Debit calls to Postgres at once per process; debits beyond wait and share the next call's commit. */
  readonly debitCallsInFlight: number;
  readonly dataDir: string;
  readonly jwt: {
    readonly secret: string | undefined;
    readonly publicKey: string | undefined;
    readonly issuer: string | undefined;
    readonly audience: string | undefined;
  };
  readonly stripe: {
    readonly secretKey: string | undefined;
    readonly webhookSecret: string | undefined;
    readonly apiUrl: string | undefined;
    /** How often Stripe's event list is read for missed events; 0: never (only `npm run reconcile`). */
    readonly reconcileIntervalMs: number;
    /** How long one call to Stripe may take; a call that times out is retried once. */
    readonly timeoutMs: number;
  };
  readonly checkout: {
    readonly successUrl: string | undefined;
    readonly cancelUrl: string | undefined;
    readonly allowedOrigins: readonly string[];
  };
  readonly revenuecat: {
    readonly webhookAuth: string | undefined;
    readonly allowSandbox: boolean;
    /** Secret API key (v1) for the purchase sync; unset: the sync answers 503. */
    readonly apiKey: string | undefined;
    readonly apiUrl: string;
  };
  readonly allowDevPurchases: boolean;
  readonly corsOrigins: readonly string[];
  readonly metricsToken: string | undefined;
  /**
   * Fastify's `trustProxy`: whether (true), how many hops (a number) or which addresses (IPs, CIDRs) of
   * proxies to trust for X-Forwarded-For; false: the socket's address is the client's.
   */
  readonly trustProxy: boolean | number | readonly string[];
  /** Serve Swagger UI at /docs and the OpenAPI document at /docs/json. */
  readonly docsEnabled: boolean;
  readonly rateLimit: { readonly perMinute: number; readonly apiKeyPerMinute: number };
  /** Failed authentications per IP and minute before 429 (0: not limited); checked before any database work. */
  readonly authFailuresPerMinute: number;
  /** A request's headers and body must arrive within this (408 otherwise). */
  readonly requestTimeoutMs: number;
  readonly expirySweepIntervalMs: number;
  /** How often active holds past their expiry are marked expired and their credits freed; 0 disables. */
  readonly holdSweepIntervalMs: number;
  readonly webhooks: {
    /** Endpoints may point at loopback, private and link-local addresses (checked again at delivery). */
    readonly allowPrivateUrls: boolean;
    /** Endpoint URLs must be https (production). */
    readonly httpsOnly: boolean;
    /** How often an idle delivery worker looks for work; 0: no worker in this process. */
    readonly pollIntervalMs: number;
    /** Waits before each retry, in ms; one attempt more than entries. */
    readonly retryScheduleMs: readonly number[];
    /** An attempt that has no 2xx by then failed. */
    readonly timeoutMs: number;
    /** Deliveries in flight at once per process. */
    readonly concurrency: number;
    /** Deliveries in flight at once to one endpoint, per process (at most `concurrency`). */
    readonly endpointConcurrency: number;
    /** EVENTS_RETENTION_DAYS: events and deliveries older than this leave the event log. */
    readonly retentionDays: number;
  };
}

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function originOf(url: string, variable: string): string {
  try {
    return new URL(url).origin;
  } catch {
    throw new ConfigError(variable, `is not a valid URL: ${url}`);
  }
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** "5s,5m,30m" → [5000, 300000, 1800000]; each wait a whole number with a unit (ms, s, m, h). */
export function parseRetrySchedule(value: string): number[] {
  const waits = value.split(',').map((part) => {
    const match = /^\s*(\d{1,9})(ms|s|m|h)\s*$/.exec(part);
    if (!match) {
      throw new ConfigError(
        'WEBHOOK_RETRY_SCHEDULE',
        `must be comma-separated waits such as "5s,5m,2h" (units ms, s, m, h), got "${part.trim()}"`,
      );
    }
    return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  });
  if (waits.length > 20) throw new ConfigError('WEBHOOK_RETRY_SCHEDULE', 'must have at most 20 waits');
  return waits;
}

/** TRUST_PROXY as Fastify's `trustProxy` takes it: `true`/`false`, a hop count, or addresses and CIDRs. */
export function parseTrustProxy(value: string | undefined): boolean | number | string[] {
  if (value === undefined) return false;
  const v = value.trim();
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (hops < 1 || hops > 10)
      throw new ConfigError('TRUST_PROXY', `must be a hop count from 1 to 10, got ${v}`);
    return hops;
  }
  const entries = list(v);
  for (const entry of entries) {
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    const maxPrefix = family === 6 ? 128 : 32;
    const prefixOk =
      prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= maxPrefix && rest.length === 0);
    if (!family || !prefixOk) {
      throw new ConfigError(
        'TRUST_PROXY',
        `must be true, false, a hop count, or comma-separated addresses or CIDRs of your proxies ` +
          `(e.g. 10.0.0.0/8,127.0.0.1), got "${entry}"`,
      );
    }
  }
  return entries;
}

/**
 * Validates the environment once and returns a frozen, typed config; throws ConfigError naming the variable.
 * (About 130 lines: one check per variable, in the order of docs/configuration.md, so each rule is found beside
 * its neighbours.)
 */
export function loadConfig(
  source: Record<string, string | undefined> = process.env,
  /** `needsDatabase: false`: a tool that never connects (npm run token) is not refused for a missing DATABASE_URL. */
  options: { needsDatabase?: boolean } = {},
): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key];
    if (value === undefined || value === '') continue;
    // Value.Convert truncates "1.5" and "1e2" to 1: integers must be written as integers.
    const schema = EnvSchema.properties[key as keyof typeof EnvSchema.properties];
    if (schema.type === 'integer' && !/^-?\d+$/.test(value.trim())) {
      throw new ConfigError(key, `must be an integer, got "${value}"`);
    }
    raw[key] = value;
  }
  const env = Value.Convert(EnvSchema, Value.Default(EnvSchema, raw)) as Env;
  const first = Value.Errors(EnvSchema, env).First();
  if (first) {
    const variable = first.path.replace(/^\//, '') || 'environment';
    throw new ConfigError(variable, first.message.toLowerCase());
  }

  const production = env.NODE_ENV === 'production';
  const allowDevPurchases = env.ALLOW_DEV_PURCHASES === 'true';
  if (env.JWT_SECRET && env.JWT_PUBLIC_KEY) {
    throw new ConfigError('JWT_SECRET', 'and JWT_PUBLIC_KEY are both set; set exactly one');
  }
  if (!env.DATABASE_URL && env.DATABASE_MIGRATION_URL) {
    throw new ConfigError('DATABASE_MIGRATION_URL', 'is set but DATABASE_URL is not; set both or neither');
  }
  if (!env.DATABASE_URL && env.DATABASE_POOLER === 'transaction') {
    throw new ConfigError(
      'DATABASE_POOLER',
      'is transaction but DATABASE_URL is not set (the pooler it means)',
    );
  }
  if (production) {
    if (!env.DATABASE_URL && options.needsDatabase !== false) {
      throw new ConfigError('DATABASE_URL', 'is required when NODE_ENV=production');
    }
    if (!env.JWT_SECRET && !env.JWT_PUBLIC_KEY) {
      throw new ConfigError('JWT_SECRET', 'or JWT_PUBLIC_KEY is required when NODE_ENV=production');
    }
    if (env.JWT_SECRET === DEV_JWT_SECRET) {
      throw new ConfigError('JWT_SECRET', 'must not be the development secret when NODE_ENV=production');
    }
    if (env.JWT_SECRET && env.JWT_SECRET.length < 32) {
      throw new ConfigError('JWT_SECRET', 'must be at least 32 characters when NODE_ENV=production');
    }
    if (allowDevPurchases) {
      throw new ConfigError(
        'ALLOW_DEV_PURCHASES',
        'must not be true when NODE_ENV=production (the dev purchase route grants credits without payment)',
      );
    }
    if (env.REVENUECAT_ALLOW_SANDBOX === 'true') {
      throw new ConfigError('REVENUECAT_ALLOW_SANDBOX', 'must not be true when NODE_ENV=production');
    }
  }

  const trustProxy = parseTrustProxy(env.TRUST_PROXY);
  const allowedOrigins = list(env.CHECKOUT_ALLOWED_ORIGINS).map((o) =>
    originOf(o, 'CHECKOUT_ALLOWED_ORIGINS'),
  );
  for (const name of ['CHECKOUT_SUCCESS_URL', 'CHECKOUT_CANCEL_URL'] as const) {
    if (env[name]) originOf(env[name], name);
  }

  return Object.freeze({
    port: env.PORT,
    host: env.HOST ?? (production ? '0.0.0.0' : '127.0.0.1'),
    nodeEnv: env.NODE_ENV,
    logLevel: env.LOG_LEVEL,
    databaseUrl: env.DATABASE_URL,
    databaseMigrationUrl: env.DATABASE_MIGRATION_URL,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    databaseQueryTimeoutMs: env.DATABASE_QUERY_TIMEOUT_MS,
    databasePooler: env.DATABASE_POOLER,
    databaseReadUrl: env.DATABASE_READ_URL,
    databaseReadPoolSize: env.DATABASE_READ_POOL_SIZE,
    debitCallsInFlight: env.DEBIT_CALLS_IN_FLIGHT,
    dataDir: env.DATA_DIR,
    jwt: Object.freeze({
      secret: env.JWT_SECRET ?? (env.JWT_PUBLIC_KEY ? undefined : DEV_JWT_SECRET),
      publicKey: env.JWT_PUBLIC_KEY?.replace(/\\n/g, '\n'),
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
    }),
    stripe: Object.freeze({
      secretKey: env.STRIPE_SECRET_KEY,
      webhookSecret: env.STRIPE_WEBHOOK_SECRET,
      apiUrl: env.STRIPE_API_URL,
      reconcileIntervalMs: env.STRIPE_RECONCILE_INTERVAL_MS,
      timeoutMs: env.STRIPE_TIMEOUT_MS,
    }),
    checkout: Object.freeze({
      successUrl: env.CHECKOUT_SUCCESS_URL,
      cancelUrl: env.CHECKOUT_CANCEL_URL,
      allowedOrigins: Object.freeze(allowedOrigins),
    }),
    revenuecat: Object.freeze({
      webhookAuth: env.REVENUECAT_WEBHOOK_AUTH,
      allowSandbox: env.REVENUECAT_ALLOW_SANDBOX === 'true',
      apiKey: env.REVENUECAT_API_KEY,
      apiUrl: env.REVENUECAT_API_URL.replace(/\/+$/, ''),
    }),
    allowDevPurchases,
    corsOrigins: Object.freeze(list(env.CORS_ORIGINS)),
    metricsToken: env.METRICS_TOKEN,
    trustProxy: trustProxy,
    docsEnabled: env.DOCS_ENABLED !== 'false',
    rateLimit: Object.freeze({
      perMinute: env.RATE_LIMIT_PER_MINUTE,
      apiKeyPerMinute: env.RATE_LIMIT_API_KEY_PER_MINUTE,
    }),
    authFailuresPerMinute: env.AUTH_FAILURES_PER_MINUTE,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    expirySweepIntervalMs: env.EXPIRY_SWEEP_INTERVAL_MS,
    holdSweepIntervalMs: env.HOLD_SWEEP_INTERVAL_MS,
    webhooks: Object.freeze({
      allowPrivateUrls: env.WEBHOOK_ALLOW_PRIVATE_URLS
        ? env.WEBHOOK_ALLOW_PRIVATE_URLS === 'true'
        : !production,
      httpsOnly: production,
      pollIntervalMs: env.WEBHOOK_POLL_INTERVAL_MS,
      retryScheduleMs: Object.freeze(parseRetrySchedule(env.WEBHOOK_RETRY_SCHEDULE)),
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      concurrency: env.WEBHOOK_CONCURRENCY,
      endpointConcurrency: Math.min(env.WEBHOOK_ENDPOINT_CONCURRENCY, env.WEBHOOK_CONCURRENCY),
      retentionDays: env.EVENTS_RETENTION_DAYS,
    }),
  });
}
