import type { App } from '../../../../src/http/types.ts';
import { asAdmin, asUser, buildTestApp, cleanup, type TestApp } from '../../../helpers/app.ts';
import { type FakeStripe, signedDelivery, startFakeStripe, stripeEnv } from '../../../helpers/fake-stripe.ts';

type Obj = Record<string, unknown>;

export interface StripeTestApp extends TestApp {
  fake: FakeStripe;
}

/** The app on a fresh database, its Stripe SDK pointed at a fake Stripe that is closed with it. */
export async function buildStripeApp(env: Record<string, string> = {}): Promise<StripeTestApp> {
  const fake = await startFakeStripe();
  cleanup(() => fake.close());
  const test = await buildTestApp({ ...stripeEnv(fake), ...env });
  return { ...test, fake };
}

export async function createPackage(app: App, fields: Obj = {}): Promise<Obj & { id: string }> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/credit-packages',
    headers: asAdmin(),
    payload: { name: 'Starter pack', credits: 100, price: 499, currency: 'usd', ...fields },
  });
  if (res.statusCode !== 201) throw new Error(`package create failed: ${res.body}`);
  return res.json().data;
}

/** Starts a checkout through the API and returns the purchase id with the session the fake Stripe created. */
export async function startCheckout(
  t: StripeTestApp,
  userId: string,
  packageId: string,
): Promise<{ purchaseId: string; session: Obj }> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/v1/credits/checkout',
    headers: asUser(userId),
    payload: { packageId },
  });
  if (res.statusCode !== 201) throw new Error(`checkout failed: ${res.body}`);
  const data = res.json().data;
  const session = t.fake.sessions.get(data.sessionId);
  if (!session) throw new Error('the fake Stripe has no such session');
  return { purchaseId: data.purchaseId, session };
}

/** Posts an event to the webhook the way Stripe does: pretty-printed JSON, signed. */
export function deliver(app: App, event: Obj, opts: { timestamp?: number; secret?: string } = {}) {
  const { payload, signature } = signedDelivery(event, opts);
  return app.inject({
    method: 'POST',
    url: '/webhooks/stripe',
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature },
    payload,
  });
}

export async function purchaseRow(t: TestApp, purchaseId: string) {
  const { rows } = await t.pg.query('select * from purchases where id = $1', [purchaseId]);
  return rows[0];
}

export async function ledgerRows(t: TestApp, userId: string) {
  const { rows } = await t.pg.query(
    'select type, amount::int, balance_after::int, source, purchase_id, idempotency_key, metadata from ledger_entries where user_id = $1 order by id',
    [userId],
  );
  return rows;
}

export async function eventRows(t: TestApp, eventIds?: string[]) {
  const { rows } = await t.pg.query(
    `select event_id, type, status, purchase_id, note from webhook_events where provider = 'stripe'
     ${eventIds ? 'and event_id = any($1)' : ''} order by received_at, event_id`,
    eventIds ? [eventIds] : [],
  );
  return rows;
}

export async function countRows(t: TestApp, table: 'webhook_events' | 'ledger_entries' | 'purchases') {
  const { rows } = await t.pg.query(`select count(*)::int as n from ${table}`);
  return rows[0].n as number;
}
