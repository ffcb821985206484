import { Type } from '@sinclair/typebox';
import {
  AccountSchema,
  BalanceAfterFields,
  BalanceSchema,
  DebitBody,
  Metadata,
  PositiveAmount,
  Envelope,
  IdempotencyHeaders,
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
import { emptyBodyIsEmptyObject } from '../optional-body.ts';

/** A debit's (or a reversal's) answer: the entry, and the balance after it. */
export const EntryResult = Type.Object({ entry: LedgerEntrySchema, ...BalanceAfterFields });

const ReversalBody = Type.Object(
  {
    amount: Type.Optional(PositiveAmount),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

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
        operationId: 'createDebit',
        tags: ['accounts'],
        summary: 'Spend credits (idempotent)',
        description:
          'Spends `amount` credits, soonest-expiring first. The same `Idempotency-Key` with the same body answers ' +
          'the first result again (200, `Idempotent-Replayed: true`); with another body, 409 `idempotency_key_reused`. ' +
          'More than `available` (the balance less what holds reserve): 402 `insufficient_credits`, nothing written.',
        security,
        params: UserIdParams,
        headers: IdempotencyHeaders,
        body: DebitBody,
        response: {
          200: Envelope(EntryResult),
          201: Envelope(EntryResult),
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
      const { replayed, ...data } = result;
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.ok(data, replayed ? 200 : 201);
    },
  );

  app.post(
    '/accounts/:userId/debits/:entryId/reversals',
    {
      onRequest: app.authorize(['admin', 'credits:debit']),
      preValidation: emptyBodyIsEmptyObject,
      schema: {
        operationId: 'reverseDebit',
        tags: ['accounts'],
        summary: 'Give back credits a debit took (idempotent)',
        description:
          'Writes a `debit_reversal` entry (positive amount, `reversesEntryId` = the debit) of `amount`, by default ' +
          'all that is left to reverse. The credits return to the lots the debit took them from; any whose lot ' +
          'has expired meanwhile expire at once (an `expiry` entry in the same transaction). A debit is never ' +
          'reversed beyond its amount, whatever the concurrency: 409 `conflict`. `entryId` must be a `debit` of ' +
          'that user (404 otherwise). Replay rules of `Idempotency-Key` as for debits.',
        security,
        params: Type.Object({
          userId: UserIdParams.properties.userId,
          entryId: Type.String({ maxLength: 64 }),
        }),
        headers: IdempotencyHeaders,
        body: ReversalBody,
        response: { 200: Envelope(EntryResult), 201: Envelope(EntryResult), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { replayed, ...data } = await app.services.ledger.reverseDebit({
        userId: request.params.userId,
        entryId: request.params.entryId,
        amount: request.body?.amount,
        idempotencyKey: request.headers['idempotency-key'],
        reason: request.body?.reason,
        metadata: request.body?.metadata,
      });
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.ok(data, replayed ? 200 : 201);
    },
  );
}
