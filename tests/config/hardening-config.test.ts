import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

function refused(env: Record<string, string>, variable: string) {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  expect((caught as ConfigError).variable).toBe(variable);
  expect((caught as ConfigError).message).toContain(variable);
}

describe('REQUEST_TIMEOUT_MS and AUTH_FAILURES_PER_MINUTE', () => {
  it('default to 30000 ms and 60 failures a minute', () => {
    expect(loadConfig({})).toMatchObject({ requestTimeoutMs: 30_000, authFailuresPerMinute: 60 });
  });

  it('are read as integers', () => {
    expect(loadConfig({ REQUEST_TIMEOUT_MS: '5000', AUTH_FAILURES_PER_MINUTE: '0' })).toMatchObject({
      requestTimeoutMs: 5_000,
      authFailuresPerMinute: 0,
    });
  });

  it('refuse invalid values, naming the variable', () => {
    refused({ REQUEST_TIMEOUT_MS: '0' }, 'REQUEST_TIMEOUT_MS');
    refused({ REQUEST_TIMEOUT_MS: '1.5' }, 'REQUEST_TIMEOUT_MS');
    refused({ REQUEST_TIMEOUT_MS: 'soon' }, 'REQUEST_TIMEOUT_MS');
    refused({ AUTH_FAILURES_PER_MINUTE: '-1' }, 'AUTH_FAILURES_PER_MINUTE');
  });
});
