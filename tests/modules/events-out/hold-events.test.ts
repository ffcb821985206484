import { beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, buildTestApp, createApiKey, grant, type TestApp } from '../../helpers/app.ts';
import { captureHold, createHold, releaseHold } from '../ledger/ledger-helpers.ts';

let t: TestApp;
let key: string;

beforeAll(async () => {
  t = await buildTestApp();
  key = await createApiKey(t.app, ['credits:debit']);
});

const expireHoldNow = (holdId: string) =>
  t.pg.query(`update holds set expires_at = now() - interval '1 second' where id = $1`, [holdId]);

async function holdOf(userId: string, amount: number) {
  const res = await createHold(t.app, key, userId, { amount });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data.hold as { id: string };
}

/** The user's events of `type`, oldest first, as the event log shows them. */
async function eventsOf(userId: string, type: string) {
  const res = await t.app.inject({ method: 'GET', url: '/api/v1/events?limit=100', headers: asAdmin() });
  expect(res.statusCode).toBe(200);
  type Resource = { id: string; userId: string };
  return (res.json().data.items as { type: string; data: { hold?: Resource; balance?: Resource } }[])
    .filter((e) => e.type === type && (e.data.hold?.userId ?? e.data.balance?.userId) === userId)
    .reverse();
}

describe('hold.expired', () => {
  it('is written once when a hold expires lazily, with the hold and the balance after it', async () => {
    await grant(t.app, 'he_lazy', 10);
    const expiring = await holdOf('he_lazy', 4);
    await holdOf('he_lazy', 3); // stays active: the event's `held` must still count it
    await expireHoldNow(expiring.id);
    // The account's next operation expires it.
    expect((await createHold(t.app, key, 'he_lazy', { amount: 1 })).statusCode).toBe(201);
    const events = await eventsOf('he_lazy', 'hold.expired');
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({
      hold: { id: expiring.id, userId: 'he_lazy', amount: 4, status: 'expired', capturedAmount: 0 },
      balance: { userId: 'he_lazy', balance: 10, held: 3, available: 7 },
    });
  });

  it('is written by the sweeper too, and never for a capture or a release', async () => {
    await grant(t.app, 'he_sweep', 10);
    const captured = await holdOf('he_sweep', 2);
    const released = await holdOf('he_sweep', 2);
    const expiring = await holdOf('he_sweep', 5);
    expect((await captureHold(t.app, key, 'he_sweep', captured.id)).statusCode).toBe(201);
    expect((await releaseHold(t.app, key, 'he_sweep', released.id)).statusCode).toBe(200);
    await expireHoldNow(expiring.id);
    expect(await t.app.services.ledger.sweepExpiredHolds()).toBeGreaterThanOrEqual(1);
    const events = await eventsOf('he_sweep', 'hold.expired');
    expect(events.map((e) => e.data.hold?.id)).toEqual([expiring.id]);
    expect(events[0]!.data.balance).toMatchObject({ balance: 8, held: 0, available: 8 });
  });
});
