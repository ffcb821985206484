import type { Pool } from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../../src/http/types.ts';
import { resolveUserId } from '../../../../src/modules/providers/revenuecat/revenuecat-rules.ts';
import { asUser, buildTestApp, type TestApp } from '../../../helpers/app.ts';
import {
  createRcPackage,
  deliver,
  purchaseEvent,
  RC_AUTH,
  rcBody,
  rcState,
  storedEvent,
  unique,
} from '../../../helpers/revenuecat.ts';

const env = { REVENUECAT_WEBHOOK_AUTH: RC_AUTH };

// One app and database for the file; every test uses its own products, users and transactions.
let t: TestApp;
let app: App;
let pg: Pool;

beforeAll(async () => {
  t = await buildTestApp(env);
  app = t.app;
  pg = t.pg;
});

describe('RevenueCat purchases grant credits once per store transaction', () => {
  it('NON_RENEWING_PURCHASE (the docs sample): a completed purchase at the store price, the package credits, one grant', async () => {
    const product = unique('prod');
    const pkg = await createRcPackage(app, [product], { credits: 2100, price: 1999, currency: 'cad' });
    const [user, tx] = [unique('user'), unique('tx')];
    const body = purchaseEvent(product, user, tx);

    const res = await deliver(app, body);
    expect(res.statusCode).toBe(200);
    const purchaseId = res.json().data.purchaseId;
    expect(res.json()).toMatchObject({
      isSuccess: true,
      statusCode: 200,
      errors: [],
      data: { eventId: body.event.id, type: 'NON_RENEWING_PURCHASE', outcome: 'processed' },
    });

    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(2100);
    expect(state.purchases).toHaveLength(1);
    expect(state.purchases[0]).toMatchObject({
      id: purchaseId,
      user_id: user,
      package_id: pkg.id,
      provider: 'revenuecat',
      provider_ref: tx,
      status: 'completed',
      credits: 2100,
      // What the buyer paid (price_in_purchased_currency 32.99 CAD), not the package's 1999.
      price: 3299,
      currency: 'cad',
      credits_reversed: 0,
    });
    expect(state.purchases[0].completed_at).not.toBeNull();
    expect(state.entries).toHaveLength(1);
    expect(state.entries[0]).toMatchObject({
      type: 'grant',
      amount: 2100,
      balance_after: 2100,
      source: 'revenuecat',
      purchase_id: purchaseId,
      idempotency_key: `revenuecat:grant:${tx}`,
    });
    // the store's own price is kept for reference; the credits come from the package
    expect(state.entries[0].metadata).toMatchObject({
      eventId: body.event.id,
      productId: product,
      store: 'APP_STORE',
      storePrice: { priceUsd: 25.487, priceInPurchasedCurrency: 32.99, currency: 'CAD' },
    });
    expect(state.events).toEqual([
      expect.objectContaining({ event_id: body.event.id, status: 'processed', purchase_id: purchaseId }),
    ]);

    // the user sees it through the API too
    const purchases = await app.inject({
      method: 'GET',
      url: `/api/v1/accounts/${user}/purchases`,
      headers: asUser(user),
    });
    expect(purchases.json().data.items[0]).toMatchObject({
      provider: 'revenuecat',
      providerRef: tx,
      status: 'completed',
      creditsReversed: 0,
    });
  });

  it('10 concurrent deliveries of one event: all 200, one stored event, one purchase, one grant', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 50 });
    const [user, tx] = [unique('user'), unique('tx')];
    const body = purchaseEvent(product, user, tx);

    const responses = await Promise.all(Array.from({ length: 10 }, () => deliver(app, body)));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(10).fill(200));
    const outcomes = responses.map((r) => r.json().data.outcome).sort();
    expect(outcomes).toEqual(['processed', ...Array(9).fill('duplicate')].sort());

    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(50);
    expect(state.entries).toHaveLength(1);
    expect(state.purchases).toHaveLength(1);
    expect(state.events).toHaveLength(1);
    expect(state.events[0].status).toBe('processed');
  });

  it('the same transaction under a new event id grants nothing more (stored as ignored)', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 30 });
    const [user, tx] = [unique('user'), unique('tx')];

    const first = await deliver(app, purchaseEvent(product, user, tx));
    const again = purchaseEvent(product, user, tx);
    const second = await deliver(app, again);
    expect(second.statusCode).toBe(200);
    expect(second.json().data).toMatchObject({
      outcome: 'ignored',
      purchaseId: first.json().data.purchaseId,
    });
    expect(second.json().data.note).toMatch(/already granted/);
    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(30);
    expect(state.entries).toHaveLength(1);
    expect(state.purchases).toHaveLength(1);
    expect(state.events.map((e) => e.status)).toEqual(['processed', 'ignored']);
    expect((await storedEvent(pg, again.event.id as string)).purchase_id).toBe(first.json().data.purchaseId);
  });

  it('concurrent deliveries of one transaction under different event ids: all 200, one purchase, one grant', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 70 });
    const [user, tx] = [unique('user'), unique('tx')];
    const types = ['NON_RENEWING_PURCHASE', 'INITIAL_PURCHASE', 'RENEWAL'];
    const bodies = Array.from({ length: 10 }, (_, i) =>
      purchaseEvent(product, user, tx, { type: types[i % types.length] }),
    );

    const responses = await Promise.all(bodies.map((b) => deliver(app, b)));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(10).fill(200));
    const outcomes = responses.map((r) => r.json().data.outcome).sort();
    expect(outcomes).toEqual(['processed', ...Array(9).fill('ignored')].sort());

    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(70);
    expect(state.entries).toHaveLength(1);
    expect(state.purchases).toHaveLength(1);
    expect(state.events).toHaveLength(10);
    expect(new Set(state.events.map((e) => e.purchase_id))).toEqual(new Set([state.purchases[0].id]));
  });

  it('INITIAL_PURCHASE and RENEWAL grant again for each new store transaction', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 10 });
    const user = unique('user');
    const [tx1, tx2] = [unique('tx'), unique('tx')];
    expect(
      (await deliver(app, purchaseEvent(product, user, tx1, { type: 'INITIAL_PURCHASE' }))).statusCode,
    ).toBe(200);
    expect((await deliver(app, purchaseEvent(product, user, tx2, { type: 'RENEWAL' }))).statusCode).toBe(200);
    const state = await rcState(pg, user, tx2);
    expect(state.balance).toBe(20);
    expect(state.entries.map((e) => e.idempotency_key)).toEqual([
      `revenuecat:grant:${tx1}`,
      `revenuecat:grant:${tx2}`,
    ]);
  });

  it('credits of a package with creditExpiryDays expire that many days after the grant', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 5, creditExpiryDays: 30 });
    const user = unique('user');
    await deliver(app, purchaseEvent(product, user, unique('tx')));
    const lots = await pg.query('select amount, expires_at from credit_lots where user_id = $1', [user]);
    expect(lots.rows).toHaveLength(1);
    const days = (new Date(lots.rows[0].expires_at).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
  });

  it('an anonymous app_user_id resolves to the first non-anonymous alias', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 15 });
    const tx = unique('tx');
    const known = unique('user');
    // the identity fields of the docs' CANCELLATION sample: anonymous app_user_id and original_app_user_id
    const sample = rcBody('rc-cancellation-refund').event;
    const body = purchaseEvent(product, sample.app_user_id as string, tx, {
      original_app_user_id: sample.original_app_user_id,
      aliases: [(sample.aliases as string[])[0], known, 'another_known_user'],
    });
    expect((await deliver(app, body)).statusCode).toBe(200);
    const state = await rcState(pg, known, tx);
    expect(state.balance).toBe(15);
    expect(state.purchases[0].user_id).toBe(known);
    const anonymousIds = [sample.app_user_id, sample.original_app_user_id, (sample.aliases as string[])[0]];
    const anon = await pg.query('select count(*) from accounts where user_id = any($1)', [anonymousIds]);
    expect(Number(anon.rows[0].count)).toBe(0);
  });

  it('resolves the user to the first id that is not anonymous (app_user_id, original_app_user_id, then the aliases), else app_user_id', () => {
    const anon = (s: string) => `$RCAnonymousID:${s}`;
    const ev = (e: Record<string, unknown>) => ({ id: 'e', type: 'T', ...e });
    expect(resolveUserId(ev({ app_user_id: 'u1', original_app_user_id: 'u0', aliases: ['u2'] }))).toBe('u1');
    expect(resolveUserId(ev({ app_user_id: anon('a'), original_app_user_id: 'u0', aliases: ['u2'] }))).toBe(
      'u0',
    );
    expect(
      resolveUserId(
        ev({ app_user_id: anon('a'), original_app_user_id: anon('b'), aliases: [anon('c'), 'u2'] }),
      ),
    ).toBe('u2');
    expect(
      resolveUserId(ev({ app_user_id: anon('a'), original_app_user_id: anon('b'), aliases: [anon('c')] })),
    ).toBe(anon('a'));
    expect(resolveUserId(ev({ app_user_id: anon('a'), original_app_user_id: null, aliases: null }))).toBe(
      anon('a'),
    );
    expect(resolveUserId(ev({ app_user_id: null, original_app_user_id: anon('b'), aliases: ['u3'] }))).toBe(
      'u3',
    );
    expect(resolveUserId(ev({}))).toBeNull();
  });

  it('an anonymous purchaser with no known alias gets the credits under the anonymous id', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 3 });
    const anon = `$RCAnonymousID:${unique('a')}`;
    const tx = unique('tx');
    await deliver(app, purchaseEvent(product, anon, tx, { original_app_user_id: anon, aliases: [anon] }));
    expect((await rcState(pg, anon, tx)).balance).toBe(3);
  });

  it('keeps the ledger consistent (ledger:verify finds nothing) and counts deliveries in /metrics', async () => {
    const counted = async (outcome: string) => {
      const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      const line = new RegExp(
        `credits_webhook_events_total\\{provider="revenuecat",outcome="${outcome}"\\} (\\d+)`,
      );
      return Number(text.match(line)?.[1] ?? 0);
    };
    const [processed, duplicate] = [await counted('processed'), await counted('duplicate')];
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 9 });
    const body = purchaseEvent(product, unique('user'), unique('tx'));
    await deliver(app, body);
    await deliver(app, body);
    expect(await counted('processed')).toBe(processed + 1);
    expect(await counted('duplicate')).toBe(duplicate + 1);
    expect(await app.services.ledger.verify()).toEqual([]);
  });
});
