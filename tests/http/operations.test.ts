import { beforeAll, describe, expect, it } from 'vitest';
import { asUser, buildTestApp, type TestApp } from '../helpers/app.ts';
import { expectError } from '../helpers/envelope.ts';

describe('health and readiness', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });

  it('GET /healthz answers 200', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ isSuccess: true, statusCode: 200, data: { status: 'ok' } });
  });

  it('GET /readyz answers 200 when the database answers and every migration is applied', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ isSuccess: true, data: { status: 'ready' } });
  });

  it('GET /readyz answers 503 while a migration is missing', async () => {
    const fresh = await buildTestApp();
    const { rows } = await fresh.pg.query('select max(version) as v from schema_migrations');
    await fresh.pg.query('delete from schema_migrations where version = $1', [rows[0].v]);
    const res = await fresh.app.inject({ method: 'GET', url: '/readyz' });
    expectError(res, 503, 'service_unavailable');
    expect(res.json().errors.join(' ')).toMatch(/migration/);
  });
});

describe('request ids', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });

  it('sets x-request-id on every response, errors included', async () => {
    const ok = await t.app.inject({ method: 'GET', url: '/healthz' });
    const missing = await t.app.inject({ method: 'GET', url: '/api/v1/nope' });
    const denied = await t.app.inject({ method: 'GET', url: '/api/v1/credits/balance' });
    for (const res of [ok, missing, denied]) expect(res.headers['x-request-id']).toMatch(/^[\w-]{8,}$/);
    expect(new Set([ok, missing, denied].map((r) => r.headers['x-request-id'])).size).toBe(3);
  });

  it("echoes the caller's x-request-id", async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'trace-abc-123' },
    });
    expect(res.headers['x-request-id']).toBe('trace-abc-123');
  });
});

describe('/metrics', () => {
  it('serves Prometheus text with HTTP durations by route and status', async () => {
    const { app } = await buildTestApp();
    await app.inject({ method: 'GET', url: '/healthz' });
    await app.inject({ method: 'GET', url: '/api/v1/credits/balance', headers: asUser('m1') });
    await app.inject({ method: 'GET', url: '/api/v1/credits/balance' });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain('# TYPE http_request_duration_seconds histogram');
    expect(res.body).toMatch(
      /http_request_duration_seconds_count\{[^}]*route="\/healthz"[^}]*status_code="200"[^}]*\} 1/,
    );
    expect(res.body).toMatch(
      /http_request_duration_seconds_count\{[^}]*route="\/api\/v1\/credits\/balance"[^}]*status_code="401"/,
    );
    // Process metrics too.
    expect(res.body).toContain('process_cpu_user_seconds_total');
    // A JSON envelope is not what Prometheus reads.
    expect(res.body).not.toContain('isSuccess');
  });

  it('requires the bearer METRICS_TOKEN when it is set', async () => {
    const { app } = await buildTestApp({ METRICS_TOKEN: 'metrics-token-123' });
    const none = await app.inject({ method: 'GET', url: '/metrics' });
    expectError(none, 401, 'unauthorized');
    const wrong = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: 'Bearer metrics-token-12' },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).not.toContain('http_request_duration_seconds');
    const ok = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: 'Bearer metrics-token-123' },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('http_request_duration_seconds');
  });
});

describe('CORS', () => {
  const allowed = 'https://app.example.com';

  it('answers only the origins in CORS_ORIGINS', async () => {
    const { app } = await buildTestApp({ CORS_ORIGINS: `${allowed},https://admin.example.com` });
    const ok = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: allowed } });
    expect(ok.headers['access-control-allow-origin']).toBe(allowed);
    const second = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { origin: 'https://admin.example.com' },
    });
    expect(second.headers['access-control-allow-origin']).toBe('https://admin.example.com');

    const other = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { origin: 'https://evil.example.com' },
    });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();

    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/api/v1/credits/balance',
      headers: {
        origin: allowed,
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.statusCode).toBeLessThan(300);
    expect(preflight.headers['access-control-allow-origin']).toBe(allowed);
    expect(String(preflight.headers['access-control-allow-methods'])).toContain('GET');

    const evilPreflight = await app.inject({
      method: 'OPTIONS',
      url: '/api/v1/credits/balance',
      headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'GET' },
    });
    expect(evilPreflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('sends no CORS headers when CORS_ORIGINS is unset', async () => {
    const { app } = await buildTestApp();
    const res = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: allowed } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});
