import { Type } from '@sinclair/typebox';
import { badRequest } from '../../errors.ts';
import { languageOf } from '../../messages.ts';
import { errors, ok } from '../../http/openapi.ts';
import { anySecurity, LedgerEntrySchema, Metadata, PositiveAmount, UserId } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';

const Nullable = <T extends ReturnType<typeof Type.Integer> | ReturnType<typeof Type.String>>(t: T) =>
  Type.Union([t, Type.Null()]);

const BatchItem = Type.Object(
  {
    userId: UserId,
    amount: PositiveAmount,
    idempotencyKey: Type.String({ minLength: 1, maxLength: 255 }),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const BatchBody = Type.Object(
  { items: Type.Array(BatchItem, { minItems: 1, maxItems: 100 }) },
  {
    additionalProperties: false,
    examples: [
      {
        items: [
          { userId: 'user_1', amount: 5, idempotencyKey: 'job_8431', reason: 'Image generation' },
          { userId: 'user_2', amount: 2, idempotencyKey: 'job_8432', metadata: { model: 'small' } },
        ],
      },
    ],
  },
);

const BatchItemResult = Type.Object({
  index: Type.Integer({ minimum: 0, description: "The item's position in the request" }),
  status: Type.Integer({
    description: '201 debited, 200 replayed, 402, 409, ... as the single debit would answer',
  }),
  code: Type.Union([Type.String(), Type.Null()], { description: 'The error code when the item failed' }),
  error: Type.Union([Type.String(), Type.Null()], {
    description: "The error message when the item failed, in the request's language (Accept-Language)",
  }),
  entry: Type.Union([LedgerEntrySchema, Type.Null()]),
  balance: Nullable(Type.Integer()),
  available: Nullable(Type.Integer()),
  held: Nullable(Type.Integer()),
});

/** Many debits in one request: the front door of the debit group commit. */
export default async function batchDebitRoutes(app: App) {
  app.post(
    '/debits/batch',
    {
      onRequest: app.authorize(['admin', 'credits:debit']),
      schema: {
        operationId: 'createDebitBatch',
        tags: ['accounts'],
        summary: 'Spend credits of many users in one request',
        description:
          'Up to 100 debits of any users. Each item is exactly the debit that `POST /accounts/{userId}/debits` with ' +
          'that `idempotencyKey` would be: 201, 200 for a replay, 402, 409, with `code` set when it failed. Items ' +
          'are independent (not atomic) and answered in request order; they share one transaction where they ' +
          'can. A malformed batch (an item failing the schema, or the same `idempotencyKey` twice for one user) ' +
          'is a 400 naming the item, and nothing is debited.',
        security: anySecurity,
        body: BatchBody,
        response: {
          200: ok(
            Type.Object({ items: Type.Array(BatchItemResult) }),
            "One result per item, in request order: each is what that item's single debit would answer",
          ),
          ...errors(
            [
              400,
              'The batch is malformed (an item fails the schema, or repeats a user and idempotencyKey); nothing was debited',
            ],
            401,
            403,
            413,
            415,
            [503, 'The database is unavailable: the whole batch failed; retry it with the same keys'],
          ),
        },
      },
    },
    async (request, reply) => {
      const { items } = request.body;
      const seen = new Map<string, number>();
      items.forEach((item, i) => {
        const key = JSON.stringify([item.userId, item.idempotencyKey]);
        const first = seen.get(key);
        if (first !== undefined) {
          throw badRequest('batch.key_repeated', { index: i, first, userId: item.userId });
        }
        seen.set(key, i);
      });
      const language = languageOf(request.headers['accept-language']);
      const results = await app.services.ledger.debitBatch(items);
      return reply.ok({
        items: results.map((r) => ({ ...r, error: r.error ? r.error.render(language).join('; ') : null })),
      });
    },
  );
}
