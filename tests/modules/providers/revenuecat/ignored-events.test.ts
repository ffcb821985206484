import type { Pool } from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../../src/http/types.ts';
import { asAdmin, buildTestApp, type TestApp } from '../../../helpers/app.ts';
import {
  createRcPackage,
  deliver,
  purchaseEvent,
  RC_AUTH,
  rcBody,
  rcState,
  refundEvent,
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

describe('RevenueCat events without a credit effect: stored, 200, no credits', () => {
  it('SANDBOX purchases are stored as ignored (note "sandbox") unless REVENUECAT_ALLOW_SANDBOX=true', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 11 });
    const [user, tx] = [unique('user'), unique('tx')];
    const sandbox = purchaseEvent(product, user, tx, { environment: 'SANDBOX' });

    const res = await deliver(app, sandbox);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ outcome: 'ignored', note: 'sandbox', purchaseId: null });
    expect(await storedEvent(pg, sandbox.event.id as string)).toMatchObject({
      status: 'ignored',
      note: 'sandbox',
    });
    let state = await rcState(pg, user, tx);
    expect(state.balance).toBe(0);
    expect(state.purchases).toHaveLength(0);
    // a sandbox refund is ignored too, not parked
    const refund = refundEvent(product, unique('tx'), { environment: 'SANDBOX' });
    expect((await deliver(app, refund)).json().data).toMatchObject({ outcome: 'ignored', note: 'sandbox' });

    // the same database, served with sandbox allowed: a new sandbox event grants
    const { app: allowing } = await buildTestApp({ ...env, REVENUECAT_ALLOW_SANDBOX: 'true' }, t.databaseUrl);
    const allowed = await deliver(allowing, purchaseEvent(product, user, tx, { environment: 'SANDBOX' }));
    expect(allowed.statusCode).toBe(200);
    expect(allowed.json().data.outcome).toBe('processed');
    state = await rcState(pg, user, tx);
    expect(state.balance).toBe(11);
    expect(state.purchases).toHaveLength(1);
    expect(state.entries[0].metadata).toMatchObject({ environment: 'SANDBOX' });
  });

  it('a product no package sells is stored as parked (not ignored), with the product id in the note', async () => {
    const [user, tx] = [unique('user'), unique('tx')];
    const body = purchaseEvent('com.example.unmapped', user, tx);
    const res = await deliver(app, body);
    expect(res.statusCode).toBe(200);
    expect(res.json().data.outcome).toBe('parked');
    expect(await storedEvent(pg, body.event.id as string)).toMatchObject({
      status: 'parked',
      note: 'product com.example.unmapped is not mapped to a credit package: granted when a package maps it',
    });
    const state = await rcState(pg, user, tx);
    expect(state).toMatchObject({ balance: 0, entries: [], purchases: [] });
  });

  it('TEST, TRANSFER, VIRTUAL_CURRENCY_TRANSACTION, other and unknown types: 200, stored, no credits', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 5 });
    const [user, tx] = [unique('user'), unique('tx')];
    const types = [
      'TEST',
      'TRANSFER',
      'VIRTUAL_CURRENCY_TRANSACTION',
      'UNCANCELLATION',
      'EXPIRATION',
      'BILLING_ISSUE',
      'PRODUCT_CHANGE',
      'SUBSCRIPTION_PAUSED',
      'SUBSCRIPTION_EXTENDED',
      'TEMPORARY_ENTITLEMENT_GRANT',
      'SOMETHING_REVENUECAT_ADDS_LATER',
    ];
    for (const type of types) {
      // every one of them names a mapped product and a transaction: none may grant
      const body = purchaseEvent(product, user, tx, { type });
      const res = await deliver(app, body);
      expect(res.statusCode, type).toBe(200);
      expect(res.json().data, type).toMatchObject({ outcome: 'ignored', type, purchaseId: null });
      expect(await storedEvent(pg, body.event.id as string), type).toMatchObject({ type, status: 'ignored' });
    }
    // TRANSFER as RevenueCat sends it: no transaction, the ids moved between
    const transfer = rcBody('rc-non-renewing', {
      type: 'TRANSFER',
      transferred_from: [user],
      transferred_to: [unique('user')],
      app_user_id: undefined,
      transaction_id: undefined,
      product_id: undefined,
    });
    expect((await deliver(app, transfer)).json().data.outcome).toBe('ignored');

    const state = await rcState(pg, user, tx);
    expect(state).toMatchObject({ balance: 0, entries: [], purchases: [] });
    expect(state.events).toHaveLength(types.length);
  });

  it('a purchase event without transaction_id or product_id is stored as ignored, not granted', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 5 });
    const user = unique('user');
    for (const missing of [
      { transaction_id: null },
      { product_id: null },
      { app_user_id: null, aliases: [], original_app_user_id: null },
    ]) {
      const body = purchaseEvent(product, user, unique('tx'), missing);
      const res = await deliver(app, body);
      expect(res.statusCode).toBe(200);
      expect(res.json().data.outcome).toBe('ignored');
      expect((await storedEvent(pg, body.event.id as string)).note).toMatch(/missing/);
    }
    const entries = await pg.query('select count(*) from ledger_entries where user_id = $1', [user]);
    expect(Number(entries.rows[0].count)).toBe(0);
  });

  it('a purchase of a package deactivated since is still granted: the store was paid', async () => {
    const product = unique('prod');
    const pkg = await createRcPackage(app, [product], { credits: 9 });
    const off = await app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${pkg.id}`,
      headers: asAdmin(),
      payload: { isActive: false },
    });
    expect(off.statusCode).toBe(200);
    const [user, tx] = [unique('user'), unique('tx')];
    expect((await deliver(app, purchaseEvent(product, user, tx))).json().data.outcome).toBe('processed');
    expect((await rcState(pg, user, tx)).balance).toBe(9);
  });
});
