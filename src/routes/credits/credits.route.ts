import { Type } from '@sinclair/typebox';
import { callerUserId } from '../../plugins/auth.ts';
import {
  BalanceSchema,
  bearerSecurity,
  Envelope,
  errorResponses,
  LedgerEntrySchema,
  Page,
  PageQuery,
} from '../../schemas.ts';
import type { App } from '../../types.ts';

/** The caller's own credits (user JWT). */
export default async function creditRoutes(app: App) {
  const user = app.authorize(['user']);
  const security = bearerSecurity;

  app.get(
    '/credits/balance',
    {
      onRequest: user,
      schema: {
        tags: ['credits'],
        summary: "The caller's balance, with the credits that expire soon",
        security,
        response: { 200: Envelope(BalanceSchema), ...errorResponses },
      },
    },
    async (request, reply) => reply.ok(await app.services.ledger.balance(callerUserId(request))),
  );

  app.get(
    '/credits/ledger',
    {
      onRequest: user,
      schema: {
        tags: ['credits'],
        summary: "The caller's ledger entries, newest first",
        security,
        querystring: PageQuery,
        response: { 200: Envelope(Page(LedgerEntrySchema)), ...errorResponses },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.ledger.entries(callerUserId(request), request.query.limit, request.query.cursor),
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
