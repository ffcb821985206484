import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { startWarnings } from '../../src/start-errors.ts';

const PROD = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://credits@db.internal:5432/credits',
  JWT_SECRET: 'a-production-secret-that-is-long-enough-0123456789',
};

function refused(env: Record<string, string>, variable: string): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('TRUST_PROXY, DOCS_ENABLED, STRIPE_TIMEOUT_MS', () => {
  it('have their documented defaults: proxies not trusted, docs on, Stripe calls 5 s', () => {
    const config = loadConfig({});
    expect(config.trustProxy).toBe(false);
    expect(config.docsEnabled).toBe(true);
    expect(config.stripe.timeoutMs).toBe(5000);
  });

  it.each([
    ['true', true],
    ['false', false],
    ['1', 1],
    ['2', 2],
    ['10.0.0.0/8', ['10.0.0.0/8']],
    ['10.0.0.0/8, 127.0.0.1 ,::1,fd00::/8', ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8']],
  ])('TRUST_PROXY=%s is %j', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  it.each(['yes', '0', '11', 'lb.internal', '10.0.0.0/33', '10.0.0.1/8/9', '::1/129'])(
    'TRUST_PROXY=%s stops the start naming the variable and the forms it takes',
    (value) => {
      expect(refused({ TRUST_PROXY: value }, 'TRUST_PROXY')).toMatch(/TRUST_PROXY/);
    },
  );

  it('DOCS_ENABLED=false turns the docs off; anything but true/false is refused', () => {
    expect(loadConfig({ DOCS_ENABLED: 'false' }).docsEnabled).toBe(false);
    refused({ DOCS_ENABLED: 'no' }, 'DOCS_ENABLED');
  });

  it('STRIPE_TIMEOUT_MS takes whole milliseconds from 100 to 120000', () => {
    expect(loadConfig({ STRIPE_TIMEOUT_MS: '2500' }).stripe.timeoutMs).toBe(2500);
    refused({ STRIPE_TIMEOUT_MS: '50' }, 'STRIPE_TIMEOUT_MS');
    refused({ STRIPE_TIMEOUT_MS: '5s' }, 'STRIPE_TIMEOUT_MS');
  });
});

describe('start warnings', () => {
  it('in production, warn that /metrics without METRICS_TOKEN and /docs are public', () => {
    const warnings = startWarnings(loadConfig(PROD));
    expect(warnings.find((w) => w.includes('/metrics is public'))).toContain('METRICS_TOKEN');
    expect(warnings.find((w) => w.includes('/docs'))).toContain('DOCS_ENABLED=false');
  });

  it('say nothing of them once METRICS_TOKEN is set and DOCS_ENABLED=false, nor outside production', () => {
    expect(
      startWarnings(loadConfig({ ...PROD, METRICS_TOKEN: 'scrape-token', DOCS_ENABLED: 'false' })),
    ).toEqual([]);
    expect(startWarnings(loadConfig({}))).toEqual([]);
  });

  it('warn that TRUST_PROXY=true trusts any address', () => {
    expect(startWarnings(loadConfig({ ...PROD, METRICS_TOKEN: 't', TRUST_PROXY: 'true' })).join()).toContain(
      'TRUST_PROXY=true',
    );
  });
});
