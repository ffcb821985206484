import { Type } from '@sinclair/typebox';
import { callerUserId } from '../../http/auth.ts';
import { errors, ok } from '../../http/openapi.ts';
import {
  anySecurity,
  bearerSecurity,
  Id,
  Page,
  PurchaseExpandQuery,
  PurchasePageQuery,
  PurchaseSchema,
  UserId,
  UserIdParams,
} from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';

/** Purchase reads: the caller's own (`/credit-packages/purchases`) and any account's (`/accounts/{userId}/purchases`). */
export default async function purchaseRoutes(app: App) {
  app.get(
    '/credit-packages/purchases',
    {
      onRequest: app.authorize(['user']),
      schema: {
        operationId: 'listMyPurchases',
        tags: ['packages'],
        summary: "List the caller's purchases",
        description:
          "The caller's purchases (any provider, any status), newest first, paginated. " +
          "`?expand=package` adds each purchase's package as it is now.",
        security: bearerSecurity,
        querystring: PurchasePageQuery,
        response: {
          200: ok(Page(PurchaseSchema), 'A page of purchases; `nextCursor` fetches the next one'),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.purchases.list(
          callerUserId(request),
          request.query.limit,
          request.query.cursor,
          request.query.expand,
        ),
      ),
  );
  app.get(
    '/credit-packages/purchases/:purchaseId',
    {
      onRequest: app.authorize(['user']),
      schema: {
        operationId: 'getMyPurchase',
        tags: ['packages'],
        summary: "Get one of the caller's purchases",
        description:
          "One of the caller's purchases; another user's purchase answers 404, as if it did not exist. " +
          '`?expand=package` adds its package as it is now.',
        security: bearerSecurity,
        params: Type.Object({ purchaseId: Id }),
        querystring: PurchaseExpandQuery,
        response: {
          200: ok(PurchaseSchema, 'The purchase'),
          ...errors(401, 403, [404, 'No such purchase of the caller']),
        },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.purchases.get(
          callerUserId(request),
          request.params.purchaseId,
          request.query.expand,
        ),
      ),
  );
  app.get(
    '/accounts/:userId/purchases',
    {
      onRequest: app.authorize(['self', 'admin', 'ops', 'ledger:read']),
      schema: {
        operationId: 'listAccountPurchases',
        tags: ['accounts'],
        summary: "List a user's purchases",
        description:
          "A user's purchases, newest first, paginated (the user themselves, admins, ops, API keys with " +
          "`ledger:read`). `?expand=package` adds each purchase's package as it is now.",
        security: anySecurity,
        params: UserIdParams,
        querystring: PurchasePageQuery,
        response: {
          200: ok(Page(PurchaseSchema), 'A page of purchases; `nextCursor` fetches the next one'),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.purchases.list(
          request.params.userId,
          request.query.limit,
          request.query.cursor,
          request.query.expand,
        ),
      ),
  );
  app.get(
    '/accounts/:userId/purchases/:purchaseId',
    {
      onRequest: app.authorize(['self', 'admin', 'ops', 'ledger:read']),
      schema: {
        operationId: 'getAccountPurchase',
        tags: ['accounts'],
        summary: "Get one of a user's purchases",
        description:
          "One of a user's purchases (the user themselves, admins, ops, API keys with `ledger:read`); a purchase " +
          'of another user answers 404. `?expand=package` adds its package as it is now.',
        security: anySecurity,
        params: Type.Object({ userId: UserId, purchaseId: Id }),
        querystring: PurchaseExpandQuery,
        response: {
          200: ok(PurchaseSchema, 'The purchase'),
          ...errors(401, 403, [404, 'No such purchase of this user']),
        },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.purchases.get(
          request.params.userId,
          request.params.purchaseId,
          request.query.expand,
        ),
      ),
  );
}
