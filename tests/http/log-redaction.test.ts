import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { redactUrl } from '../../src/http/logging.ts';
import { cleanup, createTestDatabase, tokenFor } from '../helpers/app.ts';

describe('redactUrl (no database)', () => {
  it.each([
    ['/a?api_key=ck_live_1', '/a?api_key=[redacted]'],
    ['/a?access_token=eyJ.x.y&limit=5', '/a?access_token=[redacted]&limit=5'],
    ['/a?limit=5&token=abc', '/a?limit=5&token=[redacted]'],
    ['/a?key=k&secret=s', '/a?key=[redacted]&secret=[redacted]'],
    ['/a?API-KEY=k', '/a?API-KEY=[redacted]'],
    ['/a?x-api-key=k', '/a?x-api-key=[redacted]'],
    ['/a?api%5Fkey=k', '/a?api%5Fkey=[redacted]'],
    ['/a?password=p&userId=u', '/a?password=[redacted]&userId=u'],
    ['/a?userId=u&status=parked', '/a?userId=u&status=parked'],
    ['/a', '/a'],
  ])('%s → %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});

describe('query-string credentials in the log', () => {
  it('never writes a credential sent in the query string, on any line', async () => {
    const lines: string[] = [];
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'trace',
      DATABASE_URL: await createTestDatabase(),
      RATE_LIMIT_PER_MINUTE: '0',
    });
    const app = await buildApp(config, { logStream: { write: (line) => lines.push(line) } });
    cleanup(() => app.close());
    await app.ready();
    const jwt = tokenFor('user_1', ['admin']);
    const apiKey = `ck_${'A'.repeat(43)}`;
    const secrets = [jwt, apiKey, 'shh-secret-value', 'raw-key-value', 'plain-token-value'];
    const urls = [
      `/api/v1/credits/balance?api_key=${apiKey}`,
      `/api/v1/credits/balance?access_token=${jwt}`,
      `/api/v1/credits/ledger?limit=5&token=plain-token-value`,
      `/api/v1/no-such-route?key=raw-key-value`,
      `/api/v1/credits/balance?secret=shh-secret-value&x=%zz`,
      `/api/v1/accounts/%zz/balance?api_key=${apiKey}`,
    ];
    for (const url of urls) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
    }
    const log = lines.join('');
    expect(log).toContain('api_key=[redacted]');
    expect(log).toContain('access_token=[redacted]');
    for (const secret of secrets) expect(log).not.toContain(secret);
  });
});
