import { Type } from '@sinclair/typebox';
import { forbidden, unauthorized } from '../../errors.ts';
import { errors, ok } from '../../http/openapi.ts';
import {
  anySecurity,
  IdParams,
  NonNegativeAmount,
  Page,
  PageQuery,
  PackageSchema,
  PositiveAmount,
} from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const packageFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Nullable(Type.String({ maxLength: 2000 })),
  credits: PositiveAmount,
  price: NonNegativeAmount,
  currency: Type.String({ pattern: '^[a-z]{3}$', description: 'ISO 4217 code, lower case' }),
  isActive: Type.Boolean(),
  stripePriceId: Nullable(Type.String({ minLength: 1, maxLength: 255 })),
  revenuecatProductIds: Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 50 }),
  creditExpiryDays: Nullable(Type.Integer({ minimum: 1, maximum: 3650 })),
};

const CreatePackageBody = Type.Object(
  {
    name: packageFields.name,
    description: Type.Optional(packageFields.description),
    credits: packageFields.credits,
    price: packageFields.price,
    currency: packageFields.currency,
    isActive: Type.Optional(packageFields.isActive),
    stripePriceId: Type.Optional(packageFields.stripePriceId),
    revenuecatProductIds: Type.Optional(packageFields.revenuecatProductIds),
    creditExpiryDays: Type.Optional(packageFields.creditExpiryDays),
  },
  {
    additionalProperties: false,
    examples: [
      {
        name: 'Starter pack',
        description: '100 credits',
        credits: 100,
        price: 499,
        currency: 'usd',
        stripePriceId: 'price_1PstarterUSD',
        revenuecatProductIds: ['credits_100'],
        creditExpiryDays: 365,
      },
    ],
  },
);
const UpdatePackageBody = Type.Partial(Type.Object(packageFields), {
  additionalProperties: false,
  minProperties: 1,
  examples: [{ price: 399, isActive: true }],
});

const ListQuery = Type.Composite(
  [
    PageQuery,
    Type.Object({
      includeInactive: Type.Boolean({ default: false, description: 'Admins and `packages:write` keys only' }),
    }),
  ],
  { additionalProperties: false },
);

/**
 * Longer than ~120 lines on purpose: one declarative block per route (schema, then handler), read one at a
 * time; splitting them into functions would only scatter what a reader looks up together.
 */
export default async function packageRoutes(app: App) {
  const writer = app.authorize(['admin', 'packages:write']);
  const writeSecurity = anySecurity;

  app.get(
    '/credit-packages',
    {
      schema: {
        operationId: 'listPackages',
        tags: ['packages'],
        summary: 'List credit packages',
        description:
          'Active credit packages, newest first, paginated; anyone may call it. `includeInactive=true` lists ' +
          'inactive ones too and needs an admin token or a `packages:write` key.',
        querystring: ListQuery,
        response: {
          200: ok(Page(PackageSchema), 'A page of packages; `nextCursor` fetches the next one'),
          ...errors(
            [401, 'includeInactive=true without credentials'],
            [403, 'includeInactive=true without the right'],
          ),
        },
      },
    },
    async (request, reply) => {
      const { limit, cursor, includeInactive } = request.query;
      if (includeInactive) {
        const principal = await app.identify(request);
        if (!principal) throw unauthorized('auth.include_inactive');
        const allowed =
          principal.kind === 'apiKey'
            ? principal.scopes.includes('packages:write')
            : principal.roles.includes('admin');
        if (!allowed) throw forbidden('auth.include_inactive');
      }
      return reply.ok(await app.services.packages.list(limit, includeInactive, cursor));
    },
  );

  app.get(
    '/credit-packages/:id',
    {
      schema: {
        operationId: 'getPackage',
        tags: ['packages'],
        summary: 'Get one credit package',
        description: 'One credit package by id, inactive ones too; anyone may call it.',
        params: IdParams,
        response: { 200: ok(PackageSchema, 'The package'), ...errors([404, 'No such package']) },
      },
    },
    async (request, reply) => reply.ok(await app.services.packages.get(request.params.id)),
  );

  app.post(
    '/credit-packages',
    {
      onRequest: writer,
      schema: {
        operationId: 'createPackage',
        tags: ['packages'],
        summary: 'Create a credit package',
        description:
          "Creates a package (admin, or an API key with `packages:write`). `price` is in the currency's minor " +
          'units; `revenuecatProductIds` map store products to it (each product id belongs to one package); ' +
          '`creditExpiryDays` null means its credits never expire.',
        security: writeSecurity,
        body: CreatePackageBody,
        response: {
          201: ok(PackageSchema, 'The package, created'),
          ...errors(401, 403, [409, 'A RevenueCat product id already belongs to another package'], 413, 415),
        },
      },
    },
    async (request, reply) => reply.ok(await app.services.packages.create(request.body), 201),
  );

  app.put(
    '/credit-packages/:id',
    {
      onRequest: writer,
      schema: {
        operationId: 'updatePackage',
        tags: ['packages'],
        summary: 'Update a credit package',
        description:
          'Changes any fields of a package (admin, or an API key with `packages:write`). Purchases already ' +
          'made keep the terms they were sold with.',
        security: writeSecurity,
        params: IdParams,
        body: UpdatePackageBody,
        response: {
          200: ok(PackageSchema, 'The package, updated'),
          ...errors(
            401,
            403,
            [404, 'No such package'],
            [409, 'A RevenueCat product id already belongs to another package'],
            413,
            415,
          ),
        },
      },
    },
    async (request, reply) => reply.ok(await app.services.packages.update(request.params.id, request.body)),
  );

  app.delete(
    '/credit-packages/:id',
    {
      onRequest: writer,
      schema: {
        operationId: 'deletePackage',
        tags: ['packages'],
        summary: 'Delete a credit package',
        description:
          'Deletes a package (admin, or an API key with `packages:write`). A package that has purchases is ' +
          'deactivated instead, so its history stays intact: `deactivated` says which happened.',
        security: writeSecurity,
        params: IdParams,
        response: {
          200: ok(
            Type.Object({
              deleted: Type.Boolean(),
              deactivated: Type.Boolean({
                description: 'True when the package had purchases and was deactivated instead',
              }),
              package: PackageSchema,
            }),
            'What happened, and the package as it was deleted or as it is now',
          ),
          ...errors(401, 403, [404, 'No such package']),
        },
      },
    },
    async (request, reply) => reply.ok(await app.services.packages.remove(request.params.id)),
  );
}
