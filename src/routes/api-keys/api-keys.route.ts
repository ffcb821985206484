import { Type } from '@sinclair/typebox';
import {
  bearerSecurity,
  Envelope,
  errorResponses,
  IdParams,
  Page,
  PageQuery,
  Scope,
  Timestamp,
} from '../../schemas.ts';
import type { App } from '../../types.ts';

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
  { additionalProperties: false },
);

export default async function apiKeyRoutes(app: App) {
  const admin = app.authorize(['admin']);
  const security = bearerSecurity;

  app.post(
    '/api-keys',
    {
      onRequest: admin,
      schema: {
        tags: ['api-keys'],
        summary: 'Create an API key (admin); the key is returned once',
        security,
        body: CreateBody,
        response: { 201: Envelope(CreatedApiKey), ...errorResponses },
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
        tags: ['api-keys'],
        summary: 'List API keys (admin); never the secret',
        security,
        querystring: PageQuery,
        response: { 200: Envelope(Page(ListedApiKey)), ...errorResponses },
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
        tags: ['api-keys'],
        summary: 'Revoke an API key (admin); it stops working at once',
        security,
        params: IdParams,
        response: { 200: Envelope(ListedApiKey), ...errorResponses },
      },
    },
    async (request, reply) => reply.ok(await app.services.apiKeys.revoke(request.params.id)),
  );
}
