import type { Pool } from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../../src/http/types.ts';
import { asUser, buildTestApp, type TestApp } from '../../../helpers/app.ts';
import {
  createRcPackage,
  deliver,
  purchaseEvent,
  RC_AUTH,
  rcState,
  unique,
} from '../../../helpers/revenuecat.ts';

/**
 * A RevenueCat purchase records what the buyer paid: the store's `price_in_purchased_currency` and `currency`,
 * in that currency's minor units. Credits still come from the package; with no store price, the package's.
 */
let t: TestApp;
let app: App;
let pg: Pool;

beforeAll(async () => {
  t = await buildTestApp({ REVENUECAT_WEBHOOK_AUTH: RC_AUTH });
  app = t.app;
  pg = t.pg;
});

async function buy(storePrice: Record<string, unknown>) {
  const product = unique('price_prod');
  await createRcPackage(app, [product], { credits: 500, price: 499, currency: 'usd' });
  const [user, tx] = [unique('price_user'), unique('price_tx')];
  const res = await deliver(app, purchaseEvent(product, user, tx, storePrice));
  expect(res.json().data.outcome, res.body).toBe('processed');
  const state = await rcState(pg, user, tx);
  return {
    user,
    purchase: state.purchases[0],
    balance: state.balance,
    purchaseId: res.json().data.purchaseId,
  };
}

describe('RevenueCat: a purchase price is what the buyer paid', () => {
  it('9.99 USD at the store is a purchase of 999 usd, whatever the package says (499)', async () => {
    const { user, purchase, balance, purchaseId } = await buy({
      price: 9.99,
      price_in_purchased_currency: 9.99,
      currency: 'USD',
    });
    expect(purchase).toMatchObject({ price: 999, currency: 'usd', credits: 500 });
    expect(balance).toBe(500);
    // As the API shows it, and as the purchase.completed event carries it.
    const read = await app.inject({
      method: 'GET',
      url: `/api/v1/credit-packages/purchases/${purchaseId}`,
      headers: asUser(user),
    });
    expect(read.json().data).toMatchObject({ price: 999, currency: 'usd', credits: 500 });
    const { rows } = await pg.query(
      `select data->'purchase'->>'price' as price, data->'purchase'->>'currency' as currency
       from events where type = 'purchase.completed' and data->'purchase'->>'id' = $1`,
      [purchaseId],
    );
    expect(rows).toEqual([{ price: '999', currency: 'usd' }]);
  });

  it('zero-decimal and three-decimal currencies: 1200 JPY is 1200 jpy, 1.234 KWD is 1234 kwd', async () => {
    const yen = await buy({ price: 8.1, price_in_purchased_currency: 1200, currency: 'JPY' });
    expect(yen.purchase).toMatchObject({ price: 1200, currency: 'jpy' });
    const dinar = await buy({ price: 4.02, price_in_purchased_currency: 1.234, currency: 'KWD' });
    expect(dinar.purchase).toMatchObject({ price: 1234, currency: 'kwd' });
    const euro = await buy({ price: 1.06, price_in_purchased_currency: 0.99, currency: 'EUR' });
    expect(euro.purchase).toMatchObject({ price: 99, currency: 'eur' });
  });

  it('without a usable store price the purchase keeps the package price', async () => {
    for (const storePrice of [
      { price: null, price_in_purchased_currency: null, currency: null },
      { price: 9.99, price_in_purchased_currency: null, currency: 'USD' },
      { price_in_purchased_currency: 9.99, currency: null },
      { price_in_purchased_currency: -9.99, currency: 'USD' },
    ]) {
      const { purchase } = await buy(storePrice);
      expect(purchase, JSON.stringify(storePrice)).toMatchObject({ price: 499, currency: 'usd' });
    }
  });
});
