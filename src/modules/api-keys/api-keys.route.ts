import { Type } from '@sinclair/typebox';
import { errors, ok } from '../../http/openapi.ts';
import { bearerSecurity, IdParams, Page, PageQuery, Scope, Timestamp } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';

const CreatedApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Scope),
  key: Type.String({ description: 'The key in clear. Shown only in this response; store it now.' }),
  createdAt: Timestamp,
});
const ListedApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Scope),
  prefix: Type.String({ description: 'The first characters of the key, to recognise it' }),
  createdAt: Timestamp,
  lastUsedAt: Type.Union([Timestamp, Type.Null()]),
  revokedAt: Type.Union([Timestamp, Type.Null()]),
});
const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    scopes: Type.Array(Scope, { minItems: 1, maxItems: 5, uniqueItems: true }),
  },
  {
    additionalProperties: false,
    examples: [{ name: 'orders-service', scopes: ['credits:debit', 'balances:read'] }],
  },
);

export default async function apiKeyRoutes(app: App) {
  const admin = app.authorize(['admin']);
  const security = bearerSecurity;

  app.post(
    '/api-keys',
    {
      onRequest: admin,
      schema: {
        operationId: 'createApiKey',
        tags: ['api-keys'],
        summary: 'Create an API key',
        description:
          'Creates a key for a backend service with the given scopes (admin). The key is in this response ' +
          'only, once: only its hash is stored. Send it as `Authorization: Bearer <key>` or `x-api-key: <key>`.',
        security,
        body: CreateBody,
        response: {
          201: ok(CreatedApiKey, 'The key, in clear, shown this once'),
          ...errors(401, 403, 413, 415),
        },
      },
    },
    async (request, reply) =>
      reply.ok(await app.services.apiKeys.create(request.body.name, request.body.scopes), 201),
  );

  app.get(
    '/api-keys',
    {
      onRequest: admin,
      schema: {
        operationId: 'listApiKeys',
        tags: ['api-keys'],
        summary: 'List API keys',
        description: 'Every API key, revoked ones too, newest first, paginated (admin); never the secret.',
        security,
        querystring: PageQuery,
        response: {
          200: ok(Page(ListedApiKey), 'A page of keys; `nextCursor` fetches the next one'),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) =>
      reply.ok(await app.services.apiKeys.list(request.query.limit, request.query.cursor)),
  );

  app.delete(
    '/api-keys/:id',
    {
      onRequest: admin,
      schema: {
        operationId: 'revokeApiKey',
        tags: ['api-keys'],
        summary: 'Revoke an API key',
        description:
          'Revokes a key (admin): it stops working at once. The key stays listed, with `revokedAt`.',
        security,
        params: IdParams,
        response: {
          200: ok(ListedApiKey, 'The key, revoked'),
          ...errors(401, 403, [404, 'No such key'], [409, 'The key is already revoked']),
        },
      },
    },
    async (request, reply) => reply.ok(await app.services.apiKeys.revoke(request.params.id)),
  );
}
