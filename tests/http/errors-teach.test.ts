import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/types.ts';
import { asAdmin, asUser, buildTestApp, createApiKey, grant } from '../helpers/app.ts';

let app: App;
beforeAll(async () => {
  ({ app } = await buildTestApp());
});

const ru = { 'accept-language': 'ru' };

describe('errors that teach, on the routes', () => {
  it('?expand=purchases names the allowed value', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/credits/ledger?expand=purchases',
      headers: asUser('t_1'),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual(['querystring.expand.0 must be one of: purchase (got "purchases")']);
  });

  it('a mistyped scope is one line naming every scope, in en and ru', async () => {
    const payload = { name: 'k', scopes: ['credits:spend'] };
    const en = await app.inject({ method: 'POST', url: '/api/v1/api-keys', headers: asAdmin(), payload });
    expect(en.statusCode).toBe(400);
    expect(en.json().errors).toEqual([
      'body.scopes.0 must be one of: checkout:create, credits:debit, balances:read, ledger:read, packages:write (got "credits:spend")',
    ]);
    const inRu = await app.inject({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: { ...asAdmin(), ...ru },
      payload,
    });
    expect(inRu.json().errors[0]).toMatch(/^body\.scopes\.0 должно быть одним из: checkout:create, /);
  });

  it('{"amout":5} names the unknown field and what it probably meant, then the missing amount', async () => {
    const key = await createApiKey(app, ['credits:debit']);
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/t_2/debits',
      headers: { 'x-api-key': key, 'idempotency-key': 'amout-1' },
      payload: { amout: 5 },
    });
    expect(res.statusCode).toBe(400);
    const [first, second] = res.json().errors as string[];
    expect(first).toMatch(
      /^body has an unknown field 'amout' \(did you mean 'amount'\?\); known fields: amount, /,
    );
    expect(second).toBe('body.amount is required');
  });

  it('a 402 says what is available and what holds keep', async () => {
    await grant(app, 't_held', 979);
    const key = await createApiKey(app, ['credits:debit']);
    const hold = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/t_held/holds',
      headers: { 'x-api-key': key, 'idempotency-key': 'hold-all' },
      payload: { amount: 979 },
    });
    expect(hold.statusCode).toBe(201);
    const debit = (headers: Record<string, string>) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/accounts/t_held/debits',
        headers: { 'x-api-key': key, 'idempotency-key': 'after-hold', ...headers },
        payload: { amount: 5 },
      });
    const en = await debit({});
    expect(en.statusCode).toBe(402);
    expect(en.json().errors).toEqual([
      'Insufficient credits: available 0 (balance 979, 979 of it held), requested 5',
    ]);
    expect((await debit(ru)).json().errors).toEqual([
      'Недостаточно кредитов: доступно 0 (баланс 979, из них 979 в резерве), запрошено 5',
    ]);
  });

  it('a 403 names the roles or scopes that would pass', async () => {
    const userOnAdmin = await app.inject({ method: 'GET', url: '/api/v1/api-keys', headers: asUser('t_3') });
    expect(userOnAdmin.statusCode).toBe(403);
    expect(userOnAdmin.json().errors).toEqual([
      'Not allowed: this route needs a JWT with role admin (API keys cannot call it)',
    ]);
    const otherAccount = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/someone_else/ledger',
      headers: { ...asUser('t_3'), ...ru },
    });
    expect(otherAccount.statusCode).toBe(403);
    expect(otherAccount.json().errors[0]).toBe(
      'Нет доступа: для этого маршрута нужен JWT владельца счёта (sub равен userId в пути), JWT с ролью admin или ops или API-ключ с правом ledger:read',
    );
    const wrongScope = await createApiKey(app, ['balances:read']);
    const keyOnInbox = await app.inject({
      method: 'GET',
      url: '/api/v1/provider-events',
      headers: { 'x-api-key': wrongScope },
    });
    expect(keyOnInbox.statusCode).toBe(403);
    expect(keyOnInbox.json().errors).toEqual([
      'Not allowed: this route needs a JWT with role admin or ops (API keys cannot call it)',
    ]);
  });
});
