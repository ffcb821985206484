import { Type } from '@sinclair/typebox';
import { forbidden, unauthorized } from '../../errors.ts';
import { callerUserId } from '../../plugins/auth.ts';
import {
  anySecurity,
  bearerSecurity,
  Envelope,
  errorResponses,
  IdParams,
  NonNegativeAmount,
  Page,
  PageQuery,
  PackageSchema,
  PositiveAmount,
  PurchaseSchema,
} from '../../schemas.ts';
import type { App } from '../../types.ts';

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
  { additionalProperties: false },
);
const UpdatePackageBody = Type.Partial(Type.Object(packageFields), {
  additionalProperties: false,
  minProperties: 1,
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

export default async function packageRoutes(app: App) {
  const writer = app.authorize(['admin', 'packages:write']);
  const writeSecurity = anySecurity;

  app.get(
    '/credit-packages',
    {
      schema: {
        tags: ['packages'],
        summary: 'Active credit packages; `includeInactive=true` (admins, packages:write) lists all',
        querystring: ListQuery,
        response: { 200: Envelope(Page(PackageSchema)), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { limit, cursor, includeInactive } = request.query;
      if (includeInactive) {
        const principal = await app.identify(request);
        if (!principal)
          throw unauthorized('includeInactive=true needs an admin token or a packages:write key');
        const allowed =
          principal.kind === 'apiKey'
            ? principal.scopes.includes('packages:write')
            : principal.roles.includes('admin');
        if (!allowed) throw forbidden('includeInactive=true needs an admin token or a packages:write key');
      }
      return reply.ok(await app.services.packages.list(limit, includeInactive, cursor));
    },
  );

  app.get(
    '/credit-packages/purchases',
    {
      onRequest: app.authorize(['user']),
      schema: {
        tags: ['packages'],
        summary: "The caller's purchases, newest first",
        security: bearerSecurity,
        querystring: PageQuery,
        response: { 200: Envelope(Page(PurchaseSchema)), ...errorResponses },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.packages.purchases(
          callerUserId(request),
          request.query.limit,
          request.query.cursor,
        ),
      ),
  );

  app.get(
    '/credit-packages/:id',
    {
      schema: {
        tags: ['packages'],
        summary: 'One credit package (inactive ones too)',
        params: IdParams,
        response: { 200: Envelope(PackageSchema), ...errorResponses },
      },
    },
    async (request, reply) => reply.ok(await app.services.packages.get(request.params.id)),
  );

  app.post(
    '/credit-packages',
    {
      onRequest: writer,
      schema: {
        tags: ['packages'],
        summary: 'Create a credit package (admin, packages:write)',
        security: writeSecurity,
        body: CreatePackageBody,
        response: { 201: Envelope(PackageSchema), ...errorResponses },
      },
    },
    async (request, reply) => reply.ok(await app.services.packages.create(request.body), 201),
  );

  app.put(
    '/credit-packages/:id',
    {
      onRequest: writer,
      schema: {
        tags: ['packages'],
        summary:
          'Update any fields of a credit package (admin, packages:write); sold purchases keep their terms',
        security: writeSecurity,
        params: IdParams,
        body: UpdatePackageBody,
        response: { 200: Envelope(PackageSchema), ...errorResponses },
      },
    },
    async (request, reply) => reply.ok(await app.services.packages.update(request.params.id, request.body)),
  );

  app.delete(
    '/credit-packages/:id',
    {
      onRequest: writer,
      schema: {
        tags: ['packages'],
        summary: 'Delete a credit package; one with purchases is deactivated instead (data kept)',
        security: writeSecurity,
        params: IdParams,
        response: {
          200: Envelope(
            Type.Object({
              deleted: Type.Boolean(),
              deactivated: Type.Boolean({
                description: 'True when the package had purchases and was deactivated instead',
              }),
              package: PackageSchema,
            }),
          ),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => reply.ok(await app.services.packages.remove(request.params.id)),
  );
}
