import { describe, expect, it } from 'vitest';
import {
  parseRevenuecatEvent,
  type RevenuecatEvent,
} from '../../../../src/modules/providers/revenuecat/revenuecat-event.ts';
import {
  grantEntry,
  refundDecision,
  resolveUserId,
  reversalDecision,
  revenuecatAction,
  waitForMapping,
  waitForPurchase,
} from '../../../../src/modules/providers/revenuecat/revenuecat-rules.ts';
import { purchase } from '../purchase-fixture.ts';

/** RevenueCat's rules without Postgres: event -> action, and action x purchase -> what the lifecycle applies. */

const event = (fields: Partial<RevenuecatEvent> = {}): RevenuecatEvent => ({
  id: 'rc_evt_1',
  type: 'NON_RENEWING_PURCHASE',
  app_user_id: 'user_1',
  product_id: 'credits_100',
  transaction_id: 'tx_1',
  environment: 'PRODUCTION',
  store: 'APP_STORE',
  ...fields,
});
const production = { allowSandbox: false };

describe('revenuecatAction: each event type of section 6', () => {
  it('purchases grant: NON_RENEWING_PURCHASE, INITIAL_PURCHASE, RENEWAL', () => {
    for (const type of ['NON_RENEWING_PURCHASE', 'INITIAL_PURCHASE', 'RENEWAL']) {
      expect(revenuecatAction(event({ type }), production)).toEqual({
        type: 'purchase',
        transactionId: 'tx_1',
        productId: 'credits_100',
        userId: 'user_1',
      });
    }
  });

  it('a purchase missing its transaction, product or user is ignored', () => {
    for (const missing of [{ transaction_id: null }, { product_id: '' }, { app_user_id: null }]) {
      expect(revenuecatAction(event(missing), production)).toEqual({
        type: 'ignore',
        note: 'transaction_id, product_id or app_user_id is missing',
      });
    }
  });

  it('sandbox events are ignored unless allowed', () => {
    const sandbox = event({ environment: 'SANDBOX' });
    expect(revenuecatAction(sandbox, production)).toEqual({ type: 'ignore', note: 'sandbox' });
    expect(revenuecatAction(sandbox, { allowSandbox: true })).toMatchObject({ type: 'purchase' });
    expect(revenuecatAction(event({ type: 'CANCELLATION', environment: 'SANDBOX' }), production)).toEqual({
      type: 'ignore',
      note: 'sandbox',
    });
  });

  it('CANCELLATION is a refund only with CUSTOMER_SUPPORT; REFUND_REVERSED grants back', () => {
    expect(
      revenuecatAction(event({ type: 'CANCELLATION', cancel_reason: 'CUSTOMER_SUPPORT' }), production),
    ).toEqual({ type: 'refund', transactionId: 'tx_1' });
    expect(
      revenuecatAction(event({ type: 'CANCELLATION', cancel_reason: 'UNSUBSCRIBE' }), production),
    ).toEqual({ type: 'ignore', note: 'cancellation (UNSUBSCRIBE): no credit change' });
    expect(revenuecatAction(event({ type: 'CANCELLATION' }), production)).toEqual({
      type: 'ignore',
      note: 'cancellation (no reason): no credit change',
    });
    expect(revenuecatAction(event({ type: 'REFUND_REVERSED' }), production)).toEqual({
      type: 'refundReversed',
      transactionId: 'tx_1',
    });
    expect(
      revenuecatAction(
        event({ type: 'CANCELLATION', cancel_reason: 'CUSTOMER_SUPPORT', transaction_id: null }),
        production,
      ),
    ).toEqual({ type: 'ignore', note: 'transaction_id is missing' });
  });

  it('TEST, TRANSFER, other and unknown types move no credits', () => {
    expect(revenuecatAction(event({ type: 'TEST' }), production)).toEqual({
      type: 'ignore',
      note: 'test event from the RevenueCat dashboard',
    });
    expect(revenuecatAction(event({ type: 'TRANSFER' }), production)).toEqual({
      type: 'ignore',
      note: 'transfer between app user ids: credits stay with the user they were granted to',
    });
    for (const type of ['EXPIRATION', 'BILLING_ISSUE', 'PRODUCT_CHANGE', 'SOMETHING_NEW']) {
      expect(revenuecatAction(event({ type }), production)).toEqual({
        type: 'ignore',
        note: `${type}: no credit effect`,
      });
    }
  });
});

describe('resolveUserId: anonymous ids', () => {
  const anon = '$RCAnonymousID:abc';
  it('takes app_user_id, else the first known id among original_app_user_id and aliases, else the anonymous id', () => {
    expect(resolveUserId(event({ app_user_id: 'u1', original_app_user_id: 'u0' }))).toBe('u1');
    expect(resolveUserId(event({ app_user_id: anon, original_app_user_id: 'u0', aliases: ['u2'] }))).toBe(
      'u0',
    );
    expect(
      resolveUserId(event({ app_user_id: anon, original_app_user_id: anon, aliases: [anon, 'u2'] })),
    ).toBe('u2');
    expect(resolveUserId(event({ app_user_id: anon, aliases: [] }))).toBe(anon);
    expect(resolveUserId(event({ app_user_id: null, original_app_user_id: 'u0' }))).toBe('u0');
    expect(resolveUserId(event({ app_user_id: null, aliases: null }))).toBeNull();
  });
  it('an anonymous buyer is granted under the resolved id', () => {
    expect(revenuecatAction(event({ app_user_id: anon, aliases: ['u9'] }), production)).toMatchObject({
      userId: 'u9',
    });
  });
});

describe('purchases', () => {
  it('an unmapped product parks the purchase until a package maps it', () => {
    expect(waitForMapping('credits_100', 'user_1')).toEqual({
      status: 'parked',
      note: 'product credits_100 is not mapped to a credit package: granted when a package maps it',
      waitingFor: 'revenuecat:product:credits_100',
      userId: 'user_1',
    });
  });

  it('the grant is keyed by the store transaction and keeps the store price in its metadata', () => {
    const e = event({ price: 9.99, price_in_purchased_currency: 1500, currency: 'JPY' });
    expect(
      grantEntry(
        e,
        { transactionId: 'tx_1', productId: 'credits_100' },
        { packageId: 'pkg_1', name: 'Pack' },
      ),
    ).toEqual({
      key: 'revenuecat:grant:tx_1',
      reason: 'RevenueCat purchase of Pack',
      metadata: {
        eventId: 'rc_evt_1',
        eventType: 'NON_RENEWING_PURCHASE',
        transactionId: 'tx_1',
        productId: 'credits_100',
        packageId: 'pkg_1',
        store: 'APP_STORE',
        environment: 'PRODUCTION',
        storePrice: { priceUsd: 9.99, priceInPurchasedCurrency: 1500, currency: 'JPY' },
      },
    });
  });
});

describe('refunds and their reversals', () => {
  const rc = purchase({ provider: 'revenuecat', provider_ref: 'tx_1', status: 'completed' });
  const refund = event({ type: 'CANCELLATION', cancel_reason: 'CUSTOMER_SUPPORT', id: 'rc_evt_2' });

  it('an event about an unknown transaction waits for its purchase', () => {
    expect(waitForPurchase('tx_1')).toEqual({
      status: 'parked',
      note: 'waiting for the purchase of transaction tx_1',
      waitingFor: 'revenuecat:transaction:tx_1',
    });
  });

  it('a refund takes back the whole purchase, once', () => {
    expect(refundDecision(rc, refund, 'tx_1')).toEqual({
      type: 'clawBackAll',
      entry: {
        keyBase: 'revenuecat:refund:tx_1',
        reason: 'RevenueCat refund',
        metadata: { eventId: 'rc_evt_2', transactionId: 'tx_1', cancelReason: 'CUSTOMER_SUPPORT' },
      },
    });
    expect(refundDecision({ ...rc, status: 'refunded' }, refund, 'tx_1')).toMatchObject({
      status: 'ignored',
      note: 'purchase already refunded',
    });
  });

  it('a reversal grants back a refunded purchase, waits for a refund not seen yet, and ignores a repeat', () => {
    const reversed = event({ type: 'REFUND_REVERSED', id: 'rc_evt_3' });
    expect(reversalDecision({ ...rc, status: 'refunded' }, reversed, 'tx_1', 1)).toEqual({
      type: 'grantBack',
      entry: {
        keyBase: 'revenuecat:refund-reversed:tx_1',
        reason: 'RevenueCat refund reversed',
        metadata: { eventId: 'rc_evt_3', transactionId: 'tx_1' },
      },
    });
    expect(reversalDecision(rc, reversed, 'tx_1', 0)).toMatchObject({
      status: 'parked',
      waitingFor: 'revenuecat:refund:tx_1',
    });
    expect(reversalDecision(rc, reversed, 'tx_1', 1)).toMatchObject({
      status: 'ignored',
      note: 'nothing to reverse: purchase is completed',
    });
  });
});

describe('parseRevenuecatEvent', () => {
  it('reads a stored body and refuses one without an event id and type', () => {
    expect(parseRevenuecatEvent({ event: { id: 'e', type: 'TEST' } })).toEqual({ id: 'e', type: 'TEST' });
    for (const bad of [null, {}, { event: { id: 'e' } }, { event: { type: 'TEST' } }]) {
      expect(() => parseRevenuecatEvent(bad)).toThrow();
    }
  });
});
