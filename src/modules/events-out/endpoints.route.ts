import { Type } from '@sinclair/typebox';
import { DeliveryStatusSchema } from './delivery-status.ts';
import { errors, ok } from '../../http/openapi.ts';
import { bearerSecurity, IdParams, Page, PageQuery, PositiveAmount, Timestamp } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { EventTypeSchema } from './event-log.route.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const Url = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: 'Where events are POSTed (https in production)',
});
const Subscriptions = Type.Array(Type.Union([EventTypeSchema, Type.Literal('*')]), {
  minItems: 1,
  maxItems: 20,
  uniqueItems: true,
  description: 'The event types sent to this endpoint, or `["*"]` for all',
});
const Thresholds = Type.Array(PositiveAmount, {
  maxItems: 10,
  uniqueItems: true,
  description: '`balance.low` fires when `available` drops from at or above one of these to below it',
});
const Description = Type.String({ maxLength: 500 });

const EndpointSchema = Type.Object(
  {
    id: Type.String(),
    url: Type.String(),
    description: Nullable(Type.String()),
    events: Type.Array(Type.String()),
    lowBalanceThresholds: Type.Array(Type.Integer()),
    disabled: Type.Boolean({ description: 'A disabled endpoint gets no deliveries until enabled again' }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'WebhookEndpoint' },
);
const EndpointWithSecret = Type.Composite([
  EndpointSchema,
  Type.Object({
    secret: Type.String({
      description: 'The signing secret (`whsec_…`). Shown only in this response; store it now.',
    }),
  }),
]);

const DeliverySchema = Type.Object(
  {
    id: Type.String(),
    endpointId: Type.String(),
    eventId: Type.String(),
    eventType: Type.String(),
    status: DeliveryStatusSchema,
    attempts: Type.Integer({ description: 'Attempts made so far' }),
    lastStatusCode: Nullable(
      Type.Integer({ description: "The last attempt's HTTP status; null: no response" }),
    ),
    lastError: Nullable(Type.String()),
    lastAttemptAt: Nullable(Timestamp),
    nextAttemptAt: Nullable(Timestamp),
    deliveredAt: Nullable(Timestamp),
    createdAt: Timestamp,
  },
  { $id: 'WebhookDelivery' },
);

const CreateBody = Type.Object(
  {
    url: Url,
    events: Subscriptions,
    description: Type.Optional(Description),
    lowBalanceThresholds: Type.Optional(Thresholds),
  },
  {
    additionalProperties: false,
    examples: [
      {
        url: 'https://billing.example.com/hooks/credits',
        events: ['purchase.completed', 'balance.low', 'balance.depleted'],
        description: 'billing app',
        lowBalanceThresholds: [100, 10],
      },
    ],
  },
);
const UpdateBody = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Subscriptions),
    description: Type.Optional(Nullable(Description)),
    lowBalanceThresholds: Type.Optional(Thresholds),
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1, examples: [{ disabled: true }, { events: ['*'] }] },
);
const DeliveriesQuery = Type.Composite(
  [
    PageQuery,
    Type.Object({
      status: Type.Optional(DeliveryStatusSchema),
    }),
  ],
  { additionalProperties: false },
);

/**
 * Longer than ~120 lines on purpose: one declarative block per route (schema, then handler), read one at a
 * time; splitting them into functions would only scatter what a reader looks up together.
 */
export default async function webhookEndpointRoutes(app: App) {
  const admin = app.authorize(['admin']);
  const security = bearerSecurity;
  const tags = ['webhook-endpoints'];
  const service = () => app.services.webhookEndpoints;

  app.post(
    '/webhook-endpoints',
    {
      onRequest: admin,
      schema: {
        operationId: 'createWebhookEndpoint',
        tags,
        summary: 'Create a webhook endpoint (admin); its secret is returned once',
        description:
          'Subscribes a URL to event types. Deliveries are signed per Standard Webhooks with the secret returned ' +
          'here (and never again). In production the URL must be https; loopback, private and link-local addresses ' +
          '(also names resolving to them) are refused unless WEBHOOK_ALLOW_PRIVATE_URLS=true.',
        security,
        body: CreateBody,
        response: {
          201: ok(EndpointWithSecret, 'The endpoint, with its signing secret (shown this once)'),
          ...errors(401, 403, 413, 415),
        },
      },
    },
    async (request, reply) => reply.ok(await service().create(request.body), 201),
  );

  app.get(
    '/webhook-endpoints',
    {
      onRequest: admin,
      schema: {
        operationId: 'listWebhookEndpoints',
        tags,
        summary: 'List webhook endpoints (admin)',
        description: 'Newest first, paginated; never the secrets.',
        security,
        querystring: PageQuery,
        response: {
          200: ok(
            Page(EndpointSchema),
            'A page of endpoints, newest first; `nextCursor` is null on the last',
          ),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) => reply.ok(await service().list(request.query.limit, request.query.cursor)),
  );

  app.get(
    '/webhook-endpoints/:id',
    {
      onRequest: admin,
      schema: {
        operationId: 'getWebhookEndpoint',
        tags,
        summary: 'Read a webhook endpoint (admin)',
        description: 'One endpoint, without its secret.',
        security,
        params: IdParams,
        response: {
          200: ok(EndpointSchema, 'The endpoint (without its secret)'),
          ...errors(401, 403, [404, 'No such webhook endpoint']),
        },
      },
    },
    async (request, reply) => reply.ok(await service().get(request.params.id)),
  );

  app.patch(
    '/webhook-endpoints/:id',
    {
      onRequest: admin,
      schema: {
        operationId: 'updateWebhookEndpoint',
        tags,
        summary: 'Update a webhook endpoint (admin): url, events, description, thresholds, disabled',
        description:
          'Changes only the fields given. `disabled: true` stops deliveries to the endpoint (events that happen ' +
          'meanwhile are not sent to it); pending deliveries resume when it is enabled again.',
        security,
        params: IdParams,
        body: UpdateBody,
        response: {
          200: ok(EndpointSchema, 'The endpoint as changed'),
          ...errors(401, 403, [404, 'No such webhook endpoint'], 413, 415),
        },
      },
    },
    async (request, reply) => reply.ok(await service().update(request.params.id, request.body)),
  );

  app.delete(
    '/webhook-endpoints/:id',
    {
      onRequest: admin,
      schema: {
        operationId: 'deleteWebhookEndpoint',
        tags,
        summary: 'Delete a webhook endpoint (admin) and its deliveries',
        description: 'The endpoint stops receiving at once; the events stay in the event log.',
        security,
        params: IdParams,
        response: {
          200: ok(EndpointSchema, 'The endpoint as it was before it was deleted'),
          ...errors(401, 403, [404, 'No such webhook endpoint']),
        },
      },
    },
    async (request, reply) => reply.ok(await service().remove(request.params.id)),
  );

  app.post(
    '/webhook-endpoints/:id/rotate-secret',
    {
      onRequest: admin,
      schema: {
        operationId: 'rotateWebhookEndpointSecret',
        tags,
        summary: 'Rotate the signing secret of a webhook endpoint (admin); the new one is returned once',
        description:
          'For 24 hours deliveries carry two signatures, with the new and the old secret, so receivers can switch ' +
          'without losing events; then only the new one.',
        security,
        params: IdParams,
        response: {
          200: ok(EndpointWithSecret, 'The endpoint, with its new signing secret (shown this once)'),
          ...errors(401, 403, [404, 'No such webhook endpoint']),
        },
      },
    },
    async (request, reply) => reply.ok(await service().rotateSecret(request.params.id)),
  );

  app.get(
    '/webhook-endpoints/:id/deliveries',
    {
      onRequest: admin,
      schema: {
        operationId: 'listWebhookDeliveries',
        tags,
        summary: "List an endpoint's deliveries (admin)",
        description:
          'Newest first, paginated, optionally by status: each with its attempts, last response code or error, ' +
          'and the next attempt when pending.',
        security,
        params: IdParams,
        querystring: DeliveriesQuery,
        response: {
          200: ok(
            Page(DeliverySchema),
            'A page of deliveries, newest first; `nextCursor` is null on the last',
          ),
          ...errors(401, 403, [404, 'No such webhook endpoint']),
        },
      },
    },
    async (request, reply) =>
      reply.ok(
        await service().deliveries(
          request.params.id,
          request.query.limit,
          request.query.cursor,
          request.query.status,
        ),
      ),
  );

  app.post(
    '/webhook-endpoints/:id/deliveries/:deliveryId/retry',
    {
      onRequest: admin,
      schema: {
        operationId: 'retryWebhookDelivery',
        tags,
        summary: 'Retry a delivery now (admin)',
        description:
          'Makes the delivery due at once, whatever its status (a failed one gets one more attempt; a delivered one ' +
          'is sent again). 409 while an attempt of it is running.',
        security,
        params: Type.Object({
          id: IdParams.properties.id,
          deliveryId: Type.String({ minLength: 1, maxLength: 64 }),
        }),
        response: {
          202: ok(DeliverySchema, 'The delivery, due now'),
          ...errors(
            401,
            403,
            [404, 'No such webhook endpoint, or no such delivery of it'],
            [409, 'An attempt of the delivery is running'],
          ),
        },
      },
    },
    async (request, reply) =>
      reply.ok(await service().retry(request.params.id, request.params.deliveryId), 202),
  );
}
