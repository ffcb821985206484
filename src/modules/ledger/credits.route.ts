import { Type } from '@sinclair/typebox';
import { callerUserId } from '../../http/auth.ts';
import { errors, ok } from '../../http/openapi.ts';
import { BalanceSchema, bearerSecurity, LedgerEntrySchema, Page } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { LEDGER_CSV, okOrCsv, wantsCsv } from '../../http/csv.ts';
import { LedgerListQuery, ledgerFilter } from './ledger-filters.ts';

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
          '`?type=` (comma-separated), `?from=` (inclusive) and `?to=` (exclusive) filter; `?expand=purchase` ' +
          'adds the purchase each entry belongs to. With `Accept: text/csv`: every matching entry as CSV, oldest ' +
          'first, no paging.',
        security,
        querystring: LedgerListQuery,
        response: {
          200: okOrCsv(
            Page(LedgerEntrySchema),
            'A page of entries; `nextCursor` fetches the next one',
            LEDGER_CSV,
          ),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) => {
      const filter = ledgerFilter(request.query, callerUserId(request));
      if (wantsCsv(request)) return app.services.reports.ledgerCsv(reply, filter, 'ledger');
      return reply.ok(
        await app.services.ledger.entries(
          filter,
          request.query.limit,
          request.query.cursor,
          request.query.expand,
        ),
      );
    },
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
