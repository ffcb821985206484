import { describe, expect, it } from 'vitest';
import type { App } from '../../src/http/types.ts';
import { bearer, buildTestApp } from '../helpers/app.ts';

/** Three anonymous requests from each of two clients, as the load balancer forwards them. */
async function statuses(app: App, clients: string[]) {
  const out: Record<string, number[]> = {};
  for (const client of clients) {
    out[client] = [];
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({
        method: 'GET',
        url: '/api/v1/credit-packages',
        headers: { 'x-forwarded-for': client },
        remoteAddress: '10.0.0.5', // the load balancer
      });
      out[client]?.push(res.statusCode);
    }
  }
  return out;
}

describe('TRUST_PROXY and per-client limits', () => {
  it('off (the default): every client behind the balancer is the balancer, one limit for all', async () => {
    const { app } = await buildTestApp({ RATE_LIMIT_PER_MINUTE: '3' });
    const s = await statuses(app, ['203.0.113.1', '203.0.113.2']);
    expect(s['203.0.113.1']).toEqual([200, 200, 200]);
    expect(s['203.0.113.2']).toEqual([429, 429, 429]);
  });

  it.each([['true'], ['1'], ['10.0.0.0/8']])(
    'TRUST_PROXY=%s: each forwarded client has its own limit',
    async (trust) => {
      const { app } = await buildTestApp({ RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: trust });
      const s = await statuses(app, ['203.0.113.1', '203.0.113.2']);
      expect(s['203.0.113.1']).toEqual([200, 200, 429]);
      expect(s['203.0.113.2']).toEqual([200, 200, 429]);
    },
  );

  it('a list that does not name the peer ignores what it forwards', async () => {
    const { app } = await buildTestApp({ RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: '192.168.0.0/16' });
    const s = await statuses(app, ['203.0.113.1', '203.0.113.2']);
    expect(s['203.0.113.2']).toEqual([429, 429, 429]);
  });

  it('failed authentications count per forwarded client only when the proxy is trusted', async () => {
    const attempt = (app: App, client: string) =>
      app.inject({
        method: 'GET',
        url: '/api/v1/credits/balance',
        headers: { 'x-forwarded-for': client, ...bearer('not-a-jwt') },
        remoteAddress: '10.0.0.5',
      });
    const untrusted = (await buildTestApp({ AUTH_FAILURES_PER_MINUTE: '2' })).app;
    await attempt(untrusted, '203.0.113.1');
    await attempt(untrusted, '203.0.113.1');
    expect((await attempt(untrusted, '203.0.113.9')).statusCode).toBe(429);

    const trusted = (await buildTestApp({ AUTH_FAILURES_PER_MINUTE: '2', TRUST_PROXY: '10.0.0.0/8' })).app;
    await attempt(trusted, '203.0.113.1');
    await attempt(trusted, '203.0.113.1');
    expect((await attempt(trusted, '203.0.113.1')).statusCode).toBe(429);
    expect((await attempt(trusted, '203.0.113.9')).statusCode).toBe(401);
  });
});

describe('TRUST_PROXY and the log', () => {
  it('logs the forwarded client address when the balancer is trusted, the balancer otherwise', async () => {
    const { buildApp } = await import('../../src/app.ts');
    const { loadConfig } = await import('../../src/config.ts');
    const { cleanup, createTestDatabase } = await import('../helpers/app.ts');
    const url = await createTestDatabase();
    for (const [trust, expected] of [
      ['10.0.0.0/8', '203.0.113.7'],
      ['', '10.0.0.5'],
    ] as const) {
      const lines: string[] = [];
      const app = await buildApp(
        loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'info', DATABASE_URL: url, TRUST_PROXY: trust }),
        { logStream: { write: (line) => lines.push(line) } },
      );
      cleanup(() => app.close());
      await app.inject({
        method: 'GET',
        url: '/healthz',
        headers: { 'x-forwarded-for': '203.0.113.7' },
        remoteAddress: '10.0.0.5',
      });
      const incoming = lines.map((l) => JSON.parse(l)).find((e) => e.msg === 'incoming request');
      expect(incoming?.req?.remoteAddress).toBe(expected);
    }
  });
});
