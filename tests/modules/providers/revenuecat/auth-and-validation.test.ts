import type { Pool } from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../../src/http/types.ts';
import { buildTestApp, type TestApp } from '../../../helpers/app.ts';
import {
  createRcPackage,
  deliver,
  purchaseEvent,
  RC_AUTH,
  rcBody,
  storedEvent,
  unique,
} from '../../../helpers/revenuecat.ts';
import { expectError } from '../../../helpers/envelope.ts';

const env = { REVENUECAT_WEBHOOK_AUTH: RC_AUTH };
const count = async (db: Pool) =>
  Number((await db.query('select count(*) from webhook_events')).rows[0].count);

let t: TestApp;
let app: App;
let pg: Pool;

beforeAll(async () => {
  t = await buildTestApp(env);
  app = t.app;
  pg = t.pg;
});

describe('RevenueCat webhook: authorization and body', () => {
  it('answers 401 in the envelope for a wrong or missing Authorization, and stores nothing', async () => {
    const before = await count(pg);
    const product = unique('prod');
    await createRcPackage(app, [product]);
    const body = purchaseEvent(product, unique('user'), unique('tx'));
    for (const authorization of [null, 'Bearer wrong', `${RC_AUTH} `, RC_AUTH.slice(0, -1), '']) {
      const res = await deliver(app, body, authorization);
      expectError(res, 401, 'unauthorized');
    }
    expect(await count(pg)).toBe(before);
    expect(await storedEvent(pg, body.event.id as string)).toBeUndefined();
  });

  it('answers 503 when REVENUECAT_WEBHOOK_AUTH is not set, whatever the Authorization', async () => {
    const { app: unconfigured } = await buildTestApp({}, t.databaseUrl);
    const body = rcBody('rc-non-renewing');
    for (const authorization of [null, RC_AUTH]) {
      const res = await deliver(unconfigured, body, authorization);
      expectError(res, 503, 'service_unavailable');
    }
    expect(await storedEvent(pg, body.event.id as string)).toBeUndefined();
  });

  it('answers 400 validation_failed in the envelope for malformed JSON', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks/revenuecat',
      headers: { authorization: RC_AUTH, 'content-type': 'application/json' },
      payload: '{"event": {"id": "x", "type": ',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      isSuccess: false,
      statusCode: 400,
      code: 'validation_failed',
      data: null,
      errors: ['Body is not valid JSON'],
    });
    expect(res.body).not.toMatch(/stack|at JSON/);
  });

  it('answers 400 naming the field for an event without id or type, or a body without event', async () => {
    const before = await count(pg);
    const cases: [unknown, RegExp][] = [
      [{ api_version: '1.0', event: { ...rcBody('rc-non-renewing').event, id: undefined } }, /event\.id/],
      [{ api_version: '1.0', event: { ...rcBody('rc-non-renewing').event, type: undefined } }, /event\.type/],
      [{ api_version: '1.0', event: { ...rcBody('rc-non-renewing').event, id: 42 } }, /event\.id/],
      [{ api_version: '1.0', event: { ...rcBody('rc-non-renewing').event, id: '' } }, /event\.id/],
      [{ api_version: '1.0' }, /event/],
    ];
    for (const [body, field] of cases) {
      const res = await deliver(app, body);
      expectError(res, 400, 'validation_failed');
      expect(res.json().errors.join(' ')).toMatch(field);
    }
    expect(await count(pg)).toBe(before);
  });

  it('accepts fields it does not know (at the top and in the event) and stores the payload as sent', async () => {
    const body = { ...rcBody('rc-non-renewing', { brand_new_field: { nested: true } }), extra_top: 1 };
    const res = await deliver(app, body);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ isSuccess: true, statusCode: 200, errors: [] });
    const stored = await storedEvent(pg, body.event.id as string);
    expect(stored.payload.extra_top).toBe(1);
    expect(stored.payload.event.brand_new_field).toEqual({ nested: true });
    expect(stored.payload.event.subscriber_attributes).toBeDefined();
  });

  it('is not under the /api/v1 rate limiter', async () => {
    const { app: limited } = await buildTestApp({ ...env, RATE_LIMIT_PER_MINUTE: '2' }, t.databaseUrl);
    for (let i = 0; i < 5; i++) {
      const res = await deliver(limited, rcBody('rc-non-renewing', { type: 'TEST' }));
      expect(res.statusCode).toBe(200);
    }
  });
});
