import { Type } from '@sinclair/typebox';
import { errors, ok } from '../../http/openapi.ts';
import {
  AccountSchema,
  BalanceAfterFields,
  BalanceSchema,
  DebitBody,
  IdempotencyHeaders,
  Metadata,
  PositiveAmount,
  LedgerEntrySchema,
  Page,
  PageQuery,
  UserIdParams,
  anySecurity,
} from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { BalanceQuery } from './credits.route.ts';
import { emptyBodyIsEmptyObject } from '../../http/optional-body.ts';
import { LEDGER_CSV, okOrCsv, wantsCsv } from '../../http/csv.ts';
import { AllLedgerQuery, LedgerListQuery, ledgerFilter } from './ledger-filters.ts';

const AccountsQuery = Type.Composite(
  [
    PageQuery,
    Type.Object({
      prefix: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 255,
          description: 'Only the accounts whose user id begins with this text',
        }),
      ),
    }),
  ],
  { additionalProperties: false },
);

/** A debit's (or a reversal's) answer: the entry, and the balance after it. */
export const EntryResult = Type.Object(
  { entry: LedgerEntrySchema, ...BalanceAfterFields },
  { $id: 'EntryResult' },
);

const ReversalBody = Type.Object(
  {
    amount: Type.Optional(PositiveAmount),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    metadata: Type.Optional(Metadata),
  },
  {
    additionalProperties: false,
    examples: [{ amount: 3, reason: 'Generation failed', metadata: { jobId: 'job_8431' } }],
  },
);

/**
 * Any account's balance, ledger and debits: operators and backend services.
 *
 * Longer than ~120 lines on purpose: one declarative block per route (schema, then handler), read one at a
 * time; splitting them into functions would only scatter what a reader looks up together.
 */
export default async function accountRoutes(app: App) {
  const security = anySecurity;

  app.get(
    '/accounts',
    {
      onRequest: app.authorize(['admin', 'ops', 'balances:read']),
      schema: {
        operationId: 'listAccounts',
        tags: ['accounts'],
        summary: 'List accounts with their balances',
        description:
          'Every account (a user who has had credits) with its balance, by user id, paginated. `?prefix=` keeps ' +
          'the accounts whose user id begins with it (then in byte order of the user id). ' +
          'Admins, ops, and API keys with `balances:read`.',
        security,
        querystring: AccountsQuery,
        response: {
          200: ok(Page(AccountSchema), 'A page of accounts; `nextCursor` fetches the next one'),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.ledger.accounts(request.query.limit, request.query.cursor, request.query.prefix),
      ),
  );

  app.get(
    '/accounts/:userId/balance',
    {
      onRequest: app.authorize(['self', 'admin', 'ops', 'balances:read']),
      schema: {
        operationId: 'getAccountBalance',
        tags: ['accounts'],
        summary: "Get a user's balance",
        description:
          "A user's balance (the user themselves, admins, ops, API keys with `balances:read`); `?at=` gives the " +
          'balance at a past time. A user who never had credits has balance 0.',
        security,
        params: UserIdParams,
        querystring: BalanceQuery,
        response: { 200: ok(BalanceSchema, 'The balance'), ...errors(401, 403) },
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
        operationId: 'listAccountLedgerEntries',
        tags: ['accounts'],
        summary: "List a user's ledger entries",
        description:
          "Every change of a user's balance, newest first, paginated (the user themselves, admins, ops, API keys " +
          'with `ledger:read`). `?type=` (comma-separated), `?from=` (inclusive) and `?to=` (exclusive) filter; ' +
          '`?expand=purchase` adds the purchase each entry belongs to. With `Accept: text/csv`: every matching ' +
          'entry as CSV, oldest first, no paging.',
        security,
        params: UserIdParams,
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
      const filter = ledgerFilter(request.query, request.params.userId);
      if (wantsCsv(request))
        return app.services.reports.ledgerCsv(reply, filter, `ledger-${request.params.userId}`);
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

  app.get(
    '/ledger',
    {
      onRequest: app.authorize(['admin', 'ops', 'ledger:read']),
      schema: {
        operationId: 'listLedgerEntries',
        tags: ['accounts'],
        summary: "List every account's ledger entries",
        description:
          'The entries of every account, newest first, paginated (admins, ops, API keys with `ledger:read`). ' +
          '`?userId=` keeps one account; `?type=` (comma-separated), `?from=` (inclusive) and `?to=` (exclusive) ' +
          'filter; `?expand=purchase` adds the purchase each entry belongs to. With `Accept: text/csv`: every ' +
          'matching entry as CSV, oldest first, no paging.',
        security,
        querystring: AllLedgerQuery,
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
      const filter = ledgerFilter(request.query, request.query.userId);
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

  app.post(
    '/accounts/:userId/debits',
    {
      onRequest: app.authorize(['admin', 'credits:debit']),
      schema: {
        operationId: 'createDebit',
        tags: ['accounts'],
        summary: "Spend a user's credits (idempotent)",
        description:
          'Spends `amount` credits, soonest-expiring first. The same `Idempotency-Key` with the same body answers ' +
          'the first result again (200, `Idempotent-Replayed: true`); with another body, 409 `idempotency_key_reused`. ' +
          'More than `available` (the balance less what holds reserve): 402 `insufficient_credits`, nothing written.',
        security,
        params: UserIdParams,
        headers: IdempotencyHeaders,
        body: DebitBody,
        response: {
          200: ok(
            EntryResult,
            'A replay: the first result for this Idempotency-Key, again (`Idempotent-Replayed: true`)',
            ['Idempotent-Replayed'],
          ),
          201: ok(EntryResult, 'The debit entry, the balance after it, and what holds reserve'),
          ...errors(
            401,
            [402, 'More than the available balance; nothing was written'],
            403,
            [409, '`idempotency_key_reused`: this Idempotency-Key was used with another body'],
            413,
            415,
          ),
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
        response: {
          200: ok(
            EntryResult,
            'A replay: the first result for this Idempotency-Key, again (`Idempotent-Replayed: true`)',
            ['Idempotent-Replayed'],
          ),
          201: ok(EntryResult, 'The debit_reversal entry and the balance after it'),
          ...errors(
            401,
            403,
            [404, 'No such debit of this user'],
            [
              409,
              '`conflict`: the debit is already reversed in full; `idempotency_key_reused`: this Idempotency-Key was used with another body',
            ],
            413,
            415,
          ),
        },
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
