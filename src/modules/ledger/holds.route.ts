import { Type } from '@sinclair/typebox';
import { errors, ok } from '../../http/openapi.ts';
import {
  anySecurity,
  BalanceAfterFields,
  HoldSchema,
  HoldStatusSchema,
  Id,
  IdempotencyHeaders,
  LedgerEntrySchema,
  Metadata,
  Page,
  PageQuery,
  PositiveAmount,
  UserId,
  UserIdParams,
} from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { emptyBodyIsEmptyObject } from '../../http/optional-body.ts';

const DEFAULT_HOLD_SECONDS = 900;

const HoldParams = Type.Object({ userId: UserId, holdId: Id });

const HoldBody = Type.Object(
  {
    amount: PositiveAmount,
    expiresInSeconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 86_400,
        default: DEFAULT_HOLD_SECONDS,
        description: 'The hold expires (its credits are freed) this long after it is made',
      }),
    ),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    metadata: Type.Optional(Metadata),
  },
  {
    additionalProperties: false,
    examples: [
      { amount: 20, expiresInSeconds: 600, reason: 'Image generation', metadata: { jobId: 'job_8431' } },
    ],
  },
);

const CaptureBody = Type.Object(
  {
    amount: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: Number.MAX_SAFE_INTEGER,
        description: "1..the hold's amount; default all",
      }),
    ),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    metadata: Type.Optional(Metadata),
  },
  {
    additionalProperties: false,
    examples: [{ amount: 12, reason: 'Image generation: 12 steps', metadata: { jobId: 'job_8431' } }],
  },
);

const HoldsQuery = Type.Composite([PageQuery, Type.Object({ status: Type.Optional(HoldStatusSchema) })], {
  additionalProperties: false,
});

const HoldResult = Type.Object({ hold: HoldSchema, ...BalanceAfterFields }, { $id: 'HoldResult' });
const CaptureResult = Type.Object(
  { hold: HoldSchema, entry: LedgerEntrySchema, ...BalanceAfterFields },
  { $id: 'CaptureResult' },
);

/**
 * Holds: reserve credits, then capture what the work cost or release them.
 *
 * Longer than ~120 lines on purpose: one declarative block per route (schema, then handler), read one at a
 * time; splitting them into functions would only scatter what a reader looks up together.
 */
export default async function holdRoutes(app: App) {
  const security = anySecurity;
  const spend = app.authorize(['admin', 'credits:debit']);
  const read = app.authorize(['self', 'admin', 'ops', 'ledger:read', 'credits:debit']);

  app.post(
    '/accounts/:userId/holds',
    {
      onRequest: spend,
      schema: {
        operationId: 'createHold',
        tags: ['holds'],
        summary: 'Reserve credits (idempotent)',
        description:
          'Reserves `amount` credits from `available` until they are captured, released, or the hold expires ' +
          '(`expiresInSeconds`, 60..86400, default 900). Writes no ledger entry and changes no balance; it lowers ' +
          '`available`. More than `available`: 402 `insufficient_credits`. The same `Idempotency-Key` with the same ' +
          'body answers the hold again (200, `Idempotent-Replayed: true`); with another body, 409 ' +
          '`idempotency_key_reused`.',
        security,
        params: UserIdParams,
        headers: IdempotencyHeaders,
        body: HoldBody,
        response: {
          200: ok(
            HoldResult,
            'A replay: the hold this Idempotency-Key made, again (`Idempotent-Replayed: true`)',
            ['Idempotent-Replayed'],
          ),
          201: ok(HoldResult, 'The hold, active, and the balance with what it reserves'),
          ...errors(
            401,
            [402, 'More than the available balance; nothing was reserved'],
            403,
            [409, '`idempotency_key_reused`: this Idempotency-Key was used with another body'],
            413,
            415,
          ),
        },
      },
    },
    async (request, reply) => {
      const { replayed, ...data } = await app.services.ledger.createHold({
        userId: request.params.userId,
        amount: request.body.amount,
        expiresInSeconds: request.body.expiresInSeconds ?? DEFAULT_HOLD_SECONDS,
        idempotencyKey: request.headers['idempotency-key'],
        reason: request.body.reason,
        metadata: request.body.metadata,
      });
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.ok(data, replayed ? 200 : 201);
    },
  );

  app.get(
    '/accounts/:userId/holds',
    {
      onRequest: read,
      schema: {
        operationId: 'listHolds',
        tags: ['holds'],
        summary: "List a user's holds, newest first",
        description: 'Paginated; `?status=` keeps the holds in that state.',
        security,
        params: UserIdParams,
        querystring: HoldsQuery,
        response: {
          200: ok(Page(HoldSchema), 'A page of holds; `nextCursor` fetches the next one'),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.ledger.holds(
          request.params.userId,
          request.query.limit,
          request.query.cursor,
          request.query.status,
        ),
      ),
  );

  app.get(
    '/accounts/:userId/holds/:holdId',
    {
      onRequest: read,
      schema: {
        operationId: 'getHold',
        tags: ['holds'],
        summary: 'Get one hold',
        description: 'A hold of that user; 404 for an unknown id or another user’s hold.',
        security,
        params: HoldParams,
        response: {
          200: ok(HoldSchema, 'The hold'),
          ...errors(401, 403, [404, 'No such hold of this user']),
        },
      },
    },
    async (request, reply) =>
      reply.ok(await app.services.ledger.hold(request.params.userId, request.params.holdId)),
  );

  app.post(
    '/accounts/:userId/holds/:holdId/capture',
    {
      onRequest: spend,
      preValidation: emptyBodyIsEmptyObject,
      schema: {
        operationId: 'captureHold',
        tags: ['holds'],
        summary: 'Capture a hold: spend what the work cost, free the rest',
        description:
          'Writes one `debit` entry of `amount` (default: the whole hold) with `holdId` set, from the credits the ' +
          'hold reserved (even if their lot expired during the hold), and frees the rest at once. A hold is ' +
          'captured at most once: the same capture again answers the first result (200, `Idempotent-Replayed: ' +
          'true`); another amount, or a capture after release or expiry, is 409 `conflict`. An amount beyond the ' +
          "hold's is 400.",
        security,
        params: HoldParams,
        body: CaptureBody,
        response: {
          200: ok(
            CaptureResult,
            'A replay: the first capture of this hold, again (`Idempotent-Replayed: true`)',
            ['Idempotent-Replayed'],
          ),
          201: ok(CaptureResult, 'The captured hold, its debit entry, and the balance after it'),
          ...errors(
            401,
            [400, "`amount` is beyond the hold's amount, or the body fails the schema"],
            403,
            [404, 'No such hold of this user'],
            [409, 'The hold was captured for another amount, released, or has expired'],
            413,
            415,
          ),
        },
      },
    },
    async (request, reply) => {
      const { replayed, ...data } = await app.services.ledger.captureHold({
        userId: request.params.userId,
        holdId: request.params.holdId,
        amount: request.body?.amount,
        reason: request.body?.reason,
        metadata: request.body?.metadata,
      });
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.ok(data, replayed ? 200 : 201);
    },
  );

  app.post(
    '/accounts/:userId/holds/:holdId/release',
    {
      onRequest: spend,
      schema: {
        operationId: 'releaseHold',
        tags: ['holds'],
        summary: 'Release a hold: free its credits',
        description:
          'Frees everything the hold reserved (credits whose lot has expired meanwhile expire at once). Releasing ' +
          'a released hold answers it again (`Idempotent-Replayed: true`); a captured or expired hold is 409 ' +
          '`conflict`.',
        security,
        params: HoldParams,
        response: {
          200: ok(HoldResult, 'The released hold (again for a replay, with `Idempotent-Replayed: true`)', [
            'Idempotent-Replayed',
          ]),
          ...errors(
            401,
            403,
            [404, 'No such hold of this user'],
            [409, 'The hold was captured or has expired'],
          ),
        },
      },
    },
    async (request, reply) => {
      const { replayed, ...data } = await app.services.ledger.releaseHold(
        request.params.userId,
        request.params.holdId,
      );
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.ok(data, 200);
    },
  );
}
