import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, REVENUECAT_API_URL } from '../../src/config.ts';

function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('loadConfig accepted the environment');
}

describe('recovery configuration', () => {
  it('defaults: reconciliation every 10 minutes, RevenueCat sync off, RevenueCat API URL', () => {
    const config = loadConfig({});
    expect(config.stripe.reconcileIntervalMs).toBe(600_000);
    expect(config.revenuecat).toMatchObject({ apiKey: undefined, apiUrl: REVENUECAT_API_URL });
  });

  it('reads the values; 0 disables reconciliation; a trailing slash on the URL is dropped', () => {
    const config = loadConfig({
      STRIPE_RECONCILE_INTERVAL_MS: '0',
      REVENUECAT_API_KEY: 'sk_rc_secret',
      REVENUECAT_API_URL: 'http://127.0.0.1:9999/',
    });
    expect(config.stripe.reconcileIntervalMs).toBe(0);
    expect(config.revenuecat).toMatchObject({ apiKey: 'sk_rc_secret', apiUrl: 'http://127.0.0.1:9999' });
  });

  it('refuses invalid values, naming the variable', () => {
    expect(refusal({ STRIPE_RECONCILE_INTERVAL_MS: '-1' }).variable).toBe('STRIPE_RECONCILE_INTERVAL_MS');
    expect(refusal({ STRIPE_RECONCILE_INTERVAL_MS: '10m' }).variable).toBe('STRIPE_RECONCILE_INTERVAL_MS');
    expect(refusal({ REVENUECAT_API_URL: 'ftp://example.test' }).variable).toBe('REVENUECAT_API_URL');
  });
});
