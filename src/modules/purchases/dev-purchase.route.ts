import { Type } from '@sinclair/typebox';
import { callerUserId } from '../../http/auth.ts';
import { BalanceSchema, bearerSecurity, Id, LedgerEntrySchema, PurchaseSchema } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { errors, ok } from '../../http/openapi.ts';

/**
 * DEV ONLY. Registered only when ALLOW_DEV_PURCHASES=true (never in production: the config refuses it),
 * so otherwise it is a 404 like any unknown route and absent from /docs/json.
 */
export default async function devPurchaseRoutes(app: App) {
  app.post(
    '/credit-packages/purchase',
    {
      onRequest: app.authorize(['user']),
      schema: {
        operationId: 'devPurchasePackage',
        tags: ['packages'],
        summary: 'DEV ONLY: grant a package without payment',
        description:
          'Exists only in test and development environments, when the service runs with ALLOW_DEV_PURCHASES=true; ' +
          'never in production (the service refuses to start with NODE_ENV=production and ALLOW_DEV_PURCHASES=true). ' +
          'Elsewhere it answers 404 like any unknown route. Grants the package to the caller at once (source `dev`).',
        security: bearerSecurity,
        body: Type.Object(
          { packageId: Id },
          { additionalProperties: false, examples: [{ packageId: 'pkg_01JD2V4B3Y7Q8N5K6M9P0R1S2T' }] },
        ),
        response: {
          201: ok(
            Type.Object({
              purchase: PurchaseSchema,
              entry: LedgerEntrySchema,
              balance: BalanceSchema.properties.balance,
            }),
            'The completed `dev` purchase, its grant entry and the balance after it',
          ),
          ...errors(401, 403, [404, 'No such package'], [409, 'The package is not active'], 413, 415),
        },
      },
    },
    async (request, reply) =>
      reply.ok(await app.services.purchases.devPurchase(callerUserId(request), request.body.packageId), 201),
  );
}
