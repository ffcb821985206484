import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { finishDocument, toYaml } from './openapi.ts';

/**
 * OpenAPI 3.0 schemas have no `propertyNames` (the metadata key rule): it is validated, and shown in the
 * document as the `x-propertyNames` extension.
 */
function toOpenApi30(document: unknown): unknown {
  const stack: unknown[] = [document];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (!node || typeof node !== 'object') continue;
    const obj = node as Record<string, unknown>;
    if ('propertyNames' in obj && typeof obj.propertyNames === 'object') {
      obj['x-propertyNames'] = obj.propertyNames;
      delete obj.propertyNames;
    }
    stack.push(...Object.values(obj));
  }
  return document;
}

/** `ui: false` (DOCS_ENABLED=false): the document is still built (npm run openapi), but /docs is not served. */
async function docs(app: FastifyInstance, opts: { ui?: boolean }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Credits service',
        version: '1.0.0',
        description:
          'Sells credit packs (Stripe Checkout, RevenueCat) and keeps every credit in an append-only ledger. ' +
          'Every response uses one envelope: `{ isSuccess, statusCode, data, errors, timestamp }`, plus `code` on errors. ' +
          'Error messages are in English or Russian as `Accept-Language` asks (`Content-Language` says which); ' +
          '`code`, field names and enum values never change. Lists take `limit` (1-100, default 20) and `cursor`, ' +
          'and answer `{ items, nextCursor }`.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A user or operator JWT, or an API key' },
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
        },
      },
      tags: [
        { name: 'packages', description: 'Credit packages and purchases' },
        { name: 'credits', description: "The caller's credits: checkout, balance, ledger" },
        {
          name: 'accounts',
          description:
            'Balances, ledgers and purchases of any account; debits, batch debits and debit reversals',
        },
        { name: 'holds', description: 'Reserve credits, then capture what the work cost or release them' },
        { name: 'api-keys', description: 'API keys for backend services' },
        { name: 'webhooks', description: 'Payment provider webhooks' },
        {
          name: 'provider-events',
          description: 'The provider-event inbox: every Stripe and RevenueCat event, its outcome, replays',
        },
        {
          name: 'webhook-endpoints',
          description:
            'Outgoing webhooks: endpoints that receive signed events, their secrets and deliveries',
        },
        { name: 'events', description: "The service's own event log: what webhooks report" },
        { name: 'operations', description: 'Health and readiness' },
      ],
    },
    transformObject: (documentObject) =>
      // A copy: the document's schemas are the routes' own validation schemas, and both passes edit them.
      toOpenApi30(
        finishDocument({
          openapiObject: structuredClone(
            (documentObject as { openapiObject: Record<string, unknown> }).openapiObject,
          ),
        }),
      ) as never,
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  // The YAML (`/docs/yaml`, `npm run openapi`) in the document's own compact layout (toYaml), once.
  const generate = app.swagger.bind(app);
  let yaml: string | undefined;
  app.swagger = ((opts?: { yaml?: boolean }) => {
    if (!opts?.yaml) return generate();
    yaml ??= toYaml(generate());
    return yaml;
  }) as typeof app.swagger;
  if (opts.ui !== false) await app.register(swaggerUi, { routePrefix: '/docs' });
}

export default fp(docs, { name: 'docs' });
