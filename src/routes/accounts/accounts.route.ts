import { Type } from '@sinclair/typebox';
import {
  AccountSchema,
  BalanceSchema,
  DebitBody,
  Envelope,
  errorResponses,
  LedgerEntrySchema,
  Page,
  PageQuery,
  PurchaseSchema,
  UserIdParams,
  anySecurity,
} from '../../schemas.ts';
import type { App } from '../../types.ts';
import { BalanceQuery } from '../credits/credits.route.ts';

/** Any account's balance, ledger and debits: operators and backend services. */
export default async function accountRoutes(app: App) {
  const security = anySecurity;

  app.get(
    '/accounts',
    {
      onRequest: app.authorize(['admin', 'ops', 'balances:read']),
      schema: {
        tags: ['accounts'],
        summary: 'Accounts with their balances, by user id',
        security,
        querystring: PageQuery,
        response: { 200: Envelope(Page(AccountSchema)), ...errorResponses },
      },
    },
    async (request, reply) =>
      reply.ok(await app.services.ledger.accounts(request.query.limit, request.query.cursor)),
  );

  app.get(
    '/accounts/:userId/balance',
    {
      onRequest: app.authorize(['self', 'admin', 'ops', 'balances:read']),
      schema: {
        tags: ['accounts'],
        summary: "A user's balance; `?at=` gives the balance at a past time",
        security,
        params: UserIdParams,
        querystring: BalanceQuery,
        response: { 200: Envelope(BalanceSchema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const at = request.query.at ? new Date(request.query.at) : undefined;
      return reply.ok(await app.services.ledger.balance(request.params.userId, at));
    },
  );

  app.get(
    '/accounts/:userId/ledger',
    {
      onRequest: app.authorize(['self', 'admin', 'ops', 'ledger:read']),
      schema: {
        tags: ['accounts'],
        summary: "A user's ledger entries, newest first",
        security,
        params: UserIdParams,
        querystring: PageQuery,
        response: { 200: Envelope(Page(LedgerEntrySchema)), ...errorResponses },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.ledger.entries(request.params.userId, request.query.limit, request.query.cursor),
      ),
  );

  app.get(
    '/accounts/:userId/purchases',
    {
      onRequest: app.authorize(['self', 'admin', 'ops', 'ledger:read']),
      schema: {
        tags: ['accounts'],
        summary: "A user's purchases, newest first",
        security,
        params: UserIdParams,
        querystring: PageQuery,
        response: { 200: Envelope(Page(PurchaseSchema)), ...errorResponses },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.packages.purchases(
          request.params.userId,
          request.query.limit,
          request.query.cursor,
        ),
      ),
  );

  app.post(
    '/accounts/:userId/debits',
    {
      onRequest: app.authorize(['admin', 'credits:debit']),
      schema: {
        tags: ['accounts'],
        summary: 'Spend credits (idempotent)',
        description:
          'Spends `amount` credits, soonest-expiring first. The same `Idempotency-Key` with the same body answers ' +
          'the first result again (200, `Idempotent-Replayed: true`); with another body, 409 `idempotency_key_reused`. ' +
          'More than the spendable balance: 402 `insufficient_credits`, nothing written.',
        security,
        params: UserIdParams,
        headers: Type.Object({ 'idempotency-key': Type.String({ minLength: 1, maxLength: 255 }) }),
        body: DebitBody,
        response: {
          200: Envelope(Type.Object({ entry: LedgerEntrySchema, balance: Type.Integer() })),
          201: Envelope(Type.Object({ entry: LedgerEntrySchema, balance: Type.Integer() })),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const result = await app.services.ledger.debit({
        userId: request.params.userId,
        amount: request.body.amount,
        idempotencyKey: request.headers['idempotency-key'],
        reason: request.body.reason,
        metadata: request.body.metadata,
      });
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.ok({ entry: result.entry, balance: result.balance }, result.replayed ? 200 : 201);
    },
  );

  app.post(
    '/accounts/:userId/revenuecat/sync',
    {
      onRequest: app.authorize(['self', 'admin']),
      schema: {
        operationId: 'syncRevenuecatPurchases',
        tags: ['accounts'],
        summary: "Grant the user's RevenueCat purchases that the webhook missed",
        description:
          "Reads the user's one-time purchases from RevenueCat (`GET /v1/subscribers/{userId}` at " +
          'REVENUECAT_API_URL with REVENUECAT_API_KEY) and grants every transaction of a mapped product not yet ' +
          "granted. The grant is keyed by the store transaction id, as the webhook's is, so a sync and a webhook " +
          'grant once between them. Sandbox transactions follow REVENUECAT_ALLOW_SANDBOX; a product no package ' +
          'maps yet is stored as parked and granted when a package maps it. 503 when REVENUECAT_API_KEY is unset ' +
          'or RevenueCat cannot be read. For the user themself and admins.',
        security,
        params: UserIdParams,
        response: {
          200: Envelope(
            Type.Object({
              granted: Type.Array(PurchaseSchema, { description: 'Purchases this sync granted' }),
              alreadyGranted: Type.Integer({ description: 'Transactions granted before (webhook or sync)' }),
              ignored: Type.Integer({
                description: 'Transactions that grant nothing (sandbox not allowed, no transaction id)',
              }),
              parked: Type.Integer({ description: 'Transactions of products no package maps yet' }),
            }),
          ),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => reply.ok(await app.services.revenuecatSync.sync(request.params.userId)),
  );
}
