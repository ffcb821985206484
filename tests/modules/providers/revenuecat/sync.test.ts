import type { Pool } from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../../src/http/types.ts';
import { asAdmin, asUser, buildTestApp, cleanup, type TestApp } from '../../../helpers/app.ts';
import { type FakeRevenuecat, startFakeRevenuecat } from '../../../helpers/fake-revenuecat.ts';
import {
  createRcPackage,
  deliver,
  purchaseEvent,
  RC_AUTH,
  rcState,
  unique,
} from '../../../helpers/revenuecat.ts';
import { expectError } from '../../../helpers/envelope.ts';

let t: TestApp;
let app: App;
let pg: Pool;
let rc: FakeRevenuecat;

beforeAll(async () => {
  rc = await startFakeRevenuecat();
  cleanup(() => rc.close());
  t = await buildTestApp({
    REVENUECAT_WEBHOOK_AUTH: RC_AUTH,
    REVENUECAT_API_KEY: rc.apiKey,
    REVENUECAT_API_URL: rc.url,
  });
  app = t.app;
  pg = t.pg;
});

const sync = (userId: string, headers: Record<string, string> = asUser(userId), target: App = app) =>
  target.inject({ method: 'POST', url: `/api/v1/accounts/${userId}/revenuecat/sync`, headers });

describe('POST /api/v1/accounts/{userId}/revenuecat/sync', () => {
  it('grants what the webhook missed, counts what it granted, ignores sandbox; a second sync grants nothing', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 40 });
    const user = unique('user');
    const [seen, missed, sandbox] = [unique('tx'), unique('tx'), unique('tx')];
    rc.addPurchase(user, product, { store_transaction_id: seen });
    rc.addPurchase(user, product, { store_transaction_id: missed });
    rc.addPurchase(user, product, { store_transaction_id: sandbox, is_sandbox: true });
    expect((await deliver(app, purchaseEvent(product, user, seen))).json().data.outcome).toBe('processed');

    const res = await sync(user);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ isSuccess: true, statusCode: 200 });
    const data = res.json().data;
    expect(data).toMatchObject({ alreadyGranted: 1, ignored: 1, parked: 0 });
    expect(data.granted).toEqual([
      expect.objectContaining({
        userId: user,
        provider: 'revenuecat',
        providerRef: missed,
        status: 'completed',
        credits: 40,
      }),
    ]);
    const state = await rcState(pg, user, missed);
    expect(state.balance).toBe(80);
    expect(state.entries.map((e) => e.idempotency_key)).toEqual([
      `revenuecat:grant:${seen}`,
      `revenuecat:grant:${missed}`,
    ]);
    expect(state.events).toEqual([
      expect.objectContaining({
        event_id: `sync:${missed}`,
        status: 'processed',
        purchase_id: data.granted[0].id,
      }),
    ]);
    const call = rc.requests.at(-1)!;
    expect(call.path).toBe(`/v1/subscribers/${user}`);
    expect(call.headers.authorization).toBe(`Bearer ${rc.apiKey}`);

    const again = await sync(user);
    expect(again.json().data).toEqual({ granted: [], alreadyGranted: 2, ignored: 1, parked: 0 });
    expect((await rcState(pg, user, missed)).balance).toBe(80);
  });

  it('a sync racing the webhook for one transaction grants once', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 25 });
    for (let round = 0; round < 6; round++) {
      const [user, tx] = [unique('user'), unique('tx')];
      rc.addPurchase(user, product, { store_transaction_id: tx });
      const responses = await Promise.all([
        sync(user),
        deliver(app, purchaseEvent(product, user, tx)),
        sync(user, asAdmin()),
        deliver(app, purchaseEvent(product, user, tx)),
      ]);
      expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
      const granted = [responses[0]!, responses[2]!].flatMap((r) => r.json().data.granted);
      const webhookGrants = [responses[1]!, responses[3]!].filter(
        (r) => r.json().data.outcome === 'processed',
      );
      expect(granted.length + webhookGrants.length).toBe(1);
      const state = await rcState(pg, user, tx);
      expect(state.balance).toBe(25);
      expect(state.entries).toHaveLength(1);
      expect(state.purchases).toHaveLength(1);
    }
    expect(await app.services.ledger.verify()).toEqual([]);
  });

  it('a product no package maps yet is parked, and granted when a package maps it', async () => {
    const product = unique('prod');
    const [user, tx] = [unique('user'), unique('tx')];
    rc.addPurchase(user, product, { store_transaction_id: tx });
    expect((await sync(user)).json().data).toEqual({ granted: [], alreadyGranted: 0, ignored: 0, parked: 1 });
    expect((await rcState(pg, user, tx)).events).toEqual([
      expect.objectContaining({ event_id: `sync:${tx}`, status: 'parked' }),
    ]);
    await createRcPackage(app, [product], { credits: 7 });
    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(7);
    expect(state.events).toEqual([expect.objectContaining({ status: 'processed' })]);
    expect((await sync(user)).json().data).toEqual({ granted: [], alreadyGranted: 1, ignored: 0, parked: 0 });
  });

  it('self and admin only; 503 without REVENUECAT_API_KEY or when RevenueCat fails', async () => {
    const user = unique('user');
    expect((await sync(user, asUser('someone_else'))).statusCode).toBe(403);
    expect((await sync(user, {})).statusCode).toBe(401);
    expect((await sync(user, asAdmin())).statusCode).toBe(200);

    rc.fail(500, 1);
    const down = await sync(user);
    expectError(down, 503, 'service_unavailable');
    expect(down.body).not.toContain(rc.apiKey);
    expect(down.json().errors).toEqual([
      'RevenueCat answered HTTP 500: the purchases could not be read; retry later',
    ]);

    const { app: unconfigured } = await buildTestApp({ REVENUECAT_API_URL: rc.url }, t.databaseUrl);
    const none = await sync(user, asUser(user), unconfigured);
    expect(none.statusCode).toBe(503);
    expect(none.json().code).toBe('service_unavailable');
    const inRussian = await sync(user, { ...asUser(user), 'accept-language': 'ru' }, unconfigured);
    expect(inRussian.json().errors).toEqual([
      'Синхронизация с RevenueCat не настроена (REVENUECAT_API_KEY не задан)',
    ]);
  });
});
