import { Type } from '@sinclair/typebox';
import { callerUserId } from '../../http/auth.ts';
import { errors, ok } from '../../http/openapi.ts';
import {
  BalanceSchema,
  bearerSecurity,
  LedgerEntrySchema,
  LedgerPageQuery,
  Page,
} from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';

/** The caller's own credits (user JWT). */
export default async function creditRoutes(app: App) {
  const user = app.authorize(['user']);
  const security = bearerSecurity;

  app.get(
    '/credits/balance',
    {
      onRequest: user,
      schema: {
        operationId: 'getMyBalance',
        tags: ['credits'],
        summary: "Get the caller's balance",
        description:
          "The caller's balance, and the credits that expire soon (summed per expiry time, soonest first). " +
          'A user who never had credits has balance 0.',
        security,
        response: { 200: ok(BalanceSchema, 'The balance'), ...errors(401, 403) },
      },
    },
    async (request, reply) => reply.ok(await app.services.ledger.balance(callerUserId(request))),
  );

  app.get(
    '/credits/ledger',
    {
      onRequest: user,
      schema: {
        operationId: 'listMyLedgerEntries',
        tags: ['credits'],
        summary: "List the caller's ledger entries",
        description:
          "Every change of the caller's balance (grants, debits, reversals, expiries), newest first, paginated. " +
          '`?expand=purchase` adds the purchase each entry belongs to.',
        security,
        querystring: LedgerPageQuery,
        response: {
          200: ok(Page(LedgerEntrySchema), 'A page of entries; `nextCursor` fetches the next one'),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.ledger.entries(
          callerUserId(request),
          request.query.limit,
          request.query.cursor,
          request.query.expand,
        ),
      ),
  );
}

export const BalanceQuery = Type.Object(
  {
    at: Type.Optional(
      Type.String({ format: 'date-time', description: 'ISO time: the balance at that moment' }),
    ),
  },
  { additionalProperties: false },
);
