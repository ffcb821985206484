import { Type } from '@sinclair/typebox';
import { errors, ok } from '../../../http/openapi.ts';
import { anySecurity, PurchaseSchema, UserIdParams } from '../../../http/schemas.ts';
import type { App } from '../../../http/types.ts';

/** `POST /accounts/{userId}/revenuecat/sync`: grants what RevenueCat's API knows and the webhook missed. */
export default async function revenuecatSyncRoutes(app: App) {
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
        security: anySecurity,
        params: UserIdParams,
        response: {
          200: ok(
            Type.Object({
              granted: Type.Array(PurchaseSchema, { description: 'Purchases this sync granted' }),
              alreadyGranted: Type.Integer({ description: 'Transactions granted before (webhook or sync)' }),
              ignored: Type.Integer({
                description: 'Transactions that grant nothing (sandbox not allowed, no transaction id)',
              }),
              parked: Type.Integer({ description: 'Transactions of products no package maps yet' }),
            }),
            'What the sync did: the purchases it granted, and counts of what it left alone',
          ),
          ...errors(401, 403, [
            503,
            'REVENUECAT_API_KEY is unset, or RevenueCat cannot be read; retry later',
          ]),
        },
      },
    },
    async (request, reply) => reply.ok(await app.services.revenuecatSync.sync(request.params.userId)),
  );
}
