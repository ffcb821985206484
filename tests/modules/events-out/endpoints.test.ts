import { randomBytes } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../../src/modules/events-out/event-types.ts';
import { isPrivateAddress } from '../../../src/modules/events-out/url-guard.ts';
import {
  asAdmin,
  asUser,
  bearer,
  buildTestApp,
  createApiKey,
  grant,
  type TestApp,
  tokenFor,
} from '../../helpers/app.ts';
import {
  createEndpoint,
  deliveriesOf,
  fastWebhooks,
  startReceiver,
  subscribe,
  waitFor,
} from './events-out-helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp(fastWebhooks);
});

const post = (app: TestApp['app'], payload: unknown, headers: Record<string, string> = asAdmin()) =>
  app.inject({ method: 'POST', url: '/api/v1/webhook-endpoints', headers, payload: payload as object });

describe('webhook endpoints API', () => {
  it('create shows the secret once; list, read, update, rotate and delete', async () => {
    const created = await post(t.app, {
      url: 'https://hooks.example.test/credits',
      events: ['credits.debited', 'balance.low'],
      description: 'billing app',
      lowBalanceThresholds: [10, 100],
    });
    expect(created.statusCode).toBe(201);
    const endpoint = created.json().data;
    expect(endpoint).toMatchObject({
      id: expect.stringMatching(/^we_/),
      url: 'https://hooks.example.test/credits',
      events: ['credits.debited', 'balance.low'],
      description: 'billing app',
      lowBalanceThresholds: [100, 10],
      disabled: false,
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });

    const list = await t.app.inject({ method: 'GET', url: '/api/v1/webhook-endpoints', headers: asAdmin() });
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain(endpoint.secret);
    expect(list.json().data.items.map((e: { id: string }) => e.id)).toContain(endpoint.id);
    const one = await t.app.inject({
      method: 'GET',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: asAdmin(),
    });
    expect(one.statusCode).toBe(200);
    expect(one.json().data).not.toHaveProperty('secret');

    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: asAdmin(),
      payload: { events: ['*'], description: null, lowBalanceThresholds: [] },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().data).toMatchObject({ events: ['*'], description: null, lowBalanceThresholds: [] });

    const rotated = await t.app.inject({
      method: 'POST',
      url: `/api/v1/webhook-endpoints/${endpoint.id}/rotate-secret`,
      headers: asAdmin(),
    });
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json().data.secret).toMatch(/^whsec_/);
    expect(rotated.json().data.secret).not.toBe(endpoint.secret);

    const deleted = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: asAdmin(),
    });
    expect(deleted.statusCode).toBe(200);
    for (const [method, url] of [
      ['GET', `/api/v1/webhook-endpoints/${endpoint.id}`],
      ['DELETE', `/api/v1/webhook-endpoints/${endpoint.id}`],
      ['POST', `/api/v1/webhook-endpoints/${endpoint.id}/rotate-secret`],
      ['GET', `/api/v1/webhook-endpoints/${endpoint.id}/deliveries`],
    ] as const) {
      const res = await t.app.inject({ method, url, headers: asAdmin() });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().code).toBe('not_found');
    }
    const ru = await t.app.inject({
      method: 'GET',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: { ...asAdmin(), 'accept-language': 'ru' },
    });
    expect(ru.json().errors).toEqual(['Эндпоинт вебхуков не найден']);
  });

  it('after a rotation, deliveries verify with the new secret and, for a grace period, the old one', async () => {
    const receiver = await startReceiver();
    const endpoint = await subscribe(t.app, receiver, { events: ['credits.granted'] });
    const rotated = await t.app.inject({
      method: 'POST',
      url: `/api/v1/webhook-endpoints/${endpoint.id}/rotate-secret`,
      headers: asAdmin(),
    });
    const newSecret = rotated.json().data.secret as string;
    receiver.secrets = [newSecret];
    await grant(t.app, 'rotation_user', 5);
    await t.app.services.webhookWorker.runOnce();
    await t.app.services.webhookWorker.runOnce();
    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    const headers = request?.headers as Record<string, string>;
    expect(headers['webhook-signature']?.split(' ')).toHaveLength(2);
    expect(() => new Webhook(newSecret).verify(request?.body as string, headers)).not.toThrow();
    expect(() => new Webhook(endpoint.secret).verify(request?.body as string, headers)).not.toThrow();
    expect(() =>
      new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(request?.body as string, headers),
    ).toThrow();
  });

  it('refuses bad input with 400 naming the field', async () => {
    for (const payload of [
      { url: 'https://x.example.test', events: ['credits.spent'] },
      { url: 'https://x.example.test', events: [] },
      { url: 'https://x.example.test', events: ['*', 'credits.debited'] },
      { url: 'https://x.example.test', events: ['*'], lowBalanceThresholds: [0] },
      { url: 'https://x.example.test', events: ['*'], lowBalanceThresholds: [5, 5] },
      { url: 'https://x.example.test', events: ['*'], secret: 'mine' },
      { url: 'ftp://x.example.test', events: ['*'] },
      { url: 'not a url', events: ['*'] },
      { events: ['*'] },
    ]) {
      const res = await post(t.app, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().code).toBe('validation_failed');
      expect(res.json().errors[0]).toMatch(/body/);
    }
    const endpoint = await createEndpoint(t.app, { url: 'https://x.example.test', events: ['*'] });
    const empty = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: asAdmin(),
      payload: {},
    });
    expect(empty.statusCode).toBe(400);
  });

  it('is for admins only; the event log also for ops', async () => {
    const key = await createApiKey(t.app, [
      'credits:debit',
      'balances:read',
      'ledger:read',
      'packages:write',
    ]);
    for (const headers of [asUser('someone'), bearer(tokenFor('ops_1', ['ops'])), { 'x-api-key': key }]) {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/webhook-endpoints', headers });
      expect(res.statusCode).toBe(403);
    }
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/webhook-endpoints' })).statusCode).toBe(401);
    const ops = await t.app.inject({
      method: 'GET',
      url: '/api/v1/events',
      headers: bearer(tokenFor('ops_1', ['ops'])),
    });
    expect(ops.statusCode).toBe(200);
    for (const headers of [asUser('someone'), { 'x-api-key': key }]) {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/events', headers });
      expect(res.statusCode).toBe(403);
    }
  });
});

describe('webhook URLs: refused addresses (SSRF)', () => {
  it('with WEBHOOK_ALLOW_PRIVATE_URLS=false: loopback, 10.x, link-local and names resolving to them', async () => {
    const strict = await buildTestApp({ WEBHOOK_ALLOW_PRIVATE_URLS: 'false' });
    for (const url of [
      'http://127.0.0.1:8080/hooks',
      'https://10.1.2.3/hooks',
      'https://172.16.5.4/hooks',
      'https://192.168.1.10/hooks',
      'http://169.254.169.254/latest/meta-data',
      'https://[::1]/hooks',
      'https://[::ffff:127.0.0.1]/hooks',
      'https://[fd00::1]/hooks',
      'http://localhost:8080/hooks', // a name that resolves to 127.0.0.1
    ]) {
      const res = await post(strict.app, { url, events: ['*'] });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().errors[0], url).toMatch(/^body\.url .*(private or loopback)/);
    }
    // A public address is accepted (nothing is sent: no worker runs here).
    expect((await post(strict.app, { url: 'https://93.184.215.14/hooks', events: ['*'] })).statusCode).toBe(
      201,
    );
    // Changing an endpoint's URL is checked the same way.
    const endpoint = await createEndpoint(strict.app, { url: 'https://93.184.215.14/a', events: ['*'] });
    const patch = await strict.app.inject({
      method: 'PATCH',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: asAdmin(),
      payload: { url: 'http://127.0.0.1/b' },
    });
    expect(patch.statusCode).toBe(400);
  });

  it('in production: http is refused, and private addresses by default', async () => {
    const secret = randomBytes(32).toString('hex');
    const prod = await buildTestApp({ NODE_ENV: 'production', JWT_SECRET: secret });
    const admin = {
      authorization: `Bearer ${createSigner({ key: secret })({ sub: 'admin_1', roles: ['admin'], exp: Math.floor(Date.now() / 1000) + 600 })}`,
    };
    const http = await post(prod.app, { url: 'http://93.184.215.14/hooks', events: ['*'] }, admin);
    expect(http.statusCode).toBe(400);
    expect(http.json().errors[0]).toBe('body.url must be an https URL in production');
    // The same refusal in Russian: the reason comes from the message catalogue, the field name stays.
    const ru = await post(
      prod.app,
      { url: 'http://93.184.215.14/hooks', events: ['*'] },
      { ...admin, 'accept-language': 'ru' },
    );
    expect(ru.json().errors).toEqual(['body.url должен быть https-URL в production']);
    const loopback = await post(prod.app, { url: 'https://127.0.0.1/hooks', events: ['*'] }, admin);
    expect(loopback.statusCode).toBe(400);
    expect(loopback.json().errors).toEqual(['body.url points at a private or loopback address (127.0.0.1)']);
    expect(
      (await post(prod.app, { url: 'https://93.184.215.14/hooks', events: ['*'] }, admin)).statusCode,
    ).toBe(201);
  });

  it('at delivery time: an endpoint saved while allowed is not reached by a replica that refuses private addresses', async () => {
    const receiver = await startReceiver();
    const allowed = await buildTestApp(fastWebhooks);
    const byName = await subscribe(allowed.app, receiver, { events: ['credits.granted'] });
    await allowed.app.inject({
      method: 'PATCH',
      url: `/api/v1/webhook-endpoints/${byName.id}`,
      headers: asAdmin(),
      payload: { url: `http://localhost:${receiver.port}/hooks` },
    });
    const byAddress = await subscribe(allowed.app, receiver, { events: ['credits.granted'] });
    const strict = await buildTestApp(
      { ...fastWebhooks, WEBHOOK_RETRY_SCHEDULE: '10ms', WEBHOOK_ALLOW_PRIVATE_URLS: 'false' },
      allowed.databaseUrl,
    );
    strict.app.services.webhookWorker.start();
    await grant(strict.app, 'ssrf_user', 3);

    await waitFor(async () => {
      const [a] = await deliveriesOf(strict.app, byName.id);
      const [b] = await deliveriesOf(strict.app, byAddress.id);
      return a?.status === 'failed' && b?.status === 'failed';
    }, 'two refused attempts each, then failed');
    expect((await deliveriesOf(strict.app, byName.id))[0]?.attempts).toBe(2);
    expect((await deliveriesOf(strict.app, byName.id))[0]?.lastError).toMatch(
      /localhost resolves to a private or loopback address/,
    );
    expect((await deliveriesOf(strict.app, byAddress.id))[0]?.lastError).toMatch(/127\.0\.0\.1 is a private/);
    expect(receiver.requests).toHaveLength(0);
  });

  it('knows the private ranges, in every spelling', () => {
    for (const a of [
      '127.0.0.1',
      '10.0.0.1',
      '100.64.0.1',
      '169.254.169.254',
      '0.0.0.0',
      '::1',
      '::',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      'fe80::1',
      'fc00::1',
      '64:ff9b::a00:1',
      '224.0.0.1',
      'not-an-ip',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ['93.184.215.14', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8']) {
      expect(isPrivateAddress(a), a).toBe(false);
    }
  });
});

describe('event log API', () => {
  it('lists events newest first with a cursor, reads one, and 404s unknown ids', async () => {
    const app = await buildTestApp();
    for (let i = 0; i < 5; i++) await grant(app.app, 'log_user', i + 1);
    const first = await app.app.inject({ method: 'GET', url: '/api/v1/events?limit=3', headers: asAdmin() });
    expect(first.statusCode).toBe(200);
    const page1 = first.json().data;
    expect(page1.items).toHaveLength(3);
    expect(page1.items[0]).toMatchObject({ type: 'credits.granted', data: { entry: { amount: 5 } } });
    const second = await app.app.inject({
      method: 'GET',
      url: `/api/v1/events?limit=3&cursor=${page1.nextCursor}`,
      headers: asAdmin(),
    });
    const page2 = second.json().data;
    expect(page2.items.map((e: { data: { entry: { amount: number } } }) => e.data.entry.amount)).toEqual([
      2, 1,
    ]);
    expect(page2.nextCursor).toBeNull();

    const one = await app.app.inject({
      method: 'GET',
      url: `/api/v1/events/${page1.items[0].id}`,
      headers: asAdmin(),
    });
    expect(one.json().data).toEqual(page1.items[0]);
    for (const id of ['evt_999999', 'evt_abc', 'nope']) {
      const res = await app.app.inject({ method: 'GET', url: `/api/v1/events/${id}`, headers: asAdmin() });
      expect(res.statusCode).toBe(404);
      expect(res.json().errors).toEqual(['Event not found']);
    }
  });

  it('the database accepts exactly the documented event types', async () => {
    const { rows } = await t.pg.query(
      `select pg_get_constraintdef(oid) as def from pg_constraint where conrelid = 'event_rows'::regclass and contype = 'c'`,
    );
    const inDb = [...(rows[0].def as string).matchAll(/'([a-z_.]+)'/g)].map((m) => m[1]);
    expect(inDb.sort()).toEqual([...EVENT_TYPES].sort());
  });
});
