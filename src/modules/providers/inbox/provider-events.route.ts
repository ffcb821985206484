import { Type } from '@sinclair/typebox';
import { errors, ok } from '../../../http/openapi.ts';
import { anySecurity, Page } from '../../../http/schemas.ts';
import type { App } from '../../../http/types.ts';
import { providerEventStatusSchema } from './provider-event-status.ts';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const EventStatus = providerEventStatusSchema(
  'processed: applied; ignored: will never move credits (see note); parked: waiting for something (a ' +
    'purchase not yet known, a refund, a product not yet mapped); failed: its handler failed (see note)',
);
const Provider = Type.Union([Type.Literal('stripe'), Type.Literal('revenuecat')]);

const eventFields = {
  id: Type.String({ description: 'The inbox id (`pev_…`)' }),
  provider: Provider,
  eventId: Type.String({
    description: "The provider's event id (sync events: `sync:<store transaction id>`)",
  }),
  type: Type.String(),
  status: EventStatus,
  note: Nullable(Type.String()),
  source: Type.Union([Type.Literal('webhook'), Type.Literal('reconcile'), Type.Literal('sync')], {
    description: 'How it arrived',
  }),
  userId: Nullable(Type.String()),
  purchaseId: Nullable(Type.String()),
  waitingFor: Nullable(
    Type.String({ description: 'What makes it run again (e.g. `purchase:<id>`, `revenuecat:product:<id>`)' }),
  ),
  attempts: Type.Integer({ description: 'Times its handler ran (1 + wake-ups and replays)' }),
  receivedAt: Type.String({ format: 'date-time' }),
  processedAt: Nullable(Type.String({ format: 'date-time' })),
};
export const ProviderEventSchema = Type.Object(eventFields, { $id: 'ProviderEvent' });
export const ProviderEventWithPayloadSchema = Type.Object(
  { ...eventFields, payload: Type.Unknown({ description: 'The event as the provider sent it' }) },
  { $id: 'ProviderEventWithPayload' },
);

const ListQuery = Type.Object(
  {
    provider: Type.Optional(Provider),
    status: Type.Optional(EventStatus),
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    userId: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    providerRef: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description:
          'What a support ticket carries: a store transaction id or original transaction id (RevenueCat), a ' +
          'PaymentIntent (`pi_…`), Checkout Session (`cs_…`), charge (`ch_…`) or receipt number (Stripe), or ' +
          "the provider's event id",
      }),
    ),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
);
const EventParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** The provider-event inbox for operators: read it, and replay what did not apply. */
export default async function providerEventRoutes(app: App) {
  const security = anySecurity;

  app.get(
    '/provider-events',
    {
      onRequest: app.authorize(['admin', 'ops']),
      schema: {
        operationId: 'listProviderEvents',
        tags: ['provider-events'],
        summary: 'Provider events (Stripe, RevenueCat), newest first',
        description:
          'Every provider event the service received (webhook, Stripe reconciliation, RevenueCat sync), stored ' +
          'once by provider and id, with its outcome. Filter by `provider`, `status`, `type`, `userId` and ' +
          '`providerRef` (a store transaction id, PaymentIntent, Checkout Session, charge or event id). ' +
          'Admin and ops.',
        security,
        querystring: ListQuery,
        response: {
          200: ok(
            Page(ProviderEventSchema),
            'A page of events, newest first; `nextCursor` is null on the last',
          ),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) => {
      const { limit, cursor, ...filter } = request.query;
      return reply.ok(
        await app.services.inbox.list(filter as Parameters<typeof app.services.inbox.list>[0], limit, cursor),
      );
    },
  );

  app.get(
    '/provider-events/:id',
    {
      onRequest: app.authorize(['admin', 'ops']),
      schema: {
        operationId: 'getProviderEvent',
        tags: ['provider-events'],
        summary: 'One provider event, with its payload',
        description: 'The event as stored, with the payload the provider sent. Admin and ops.',
        security,
        params: EventParams,
        response: {
          200: ok(ProviderEventWithPayloadSchema, 'The event, with the payload the provider sent'),
          ...errors(401, 403, [404, 'No such provider event']),
        },
      },
    },
    async (request, reply) => reply.ok(await app.services.inbox.get(request.params.id)),
  );

  app.post(
    '/provider-events/:id/replay',
    {
      onRequest: app.authorize(['admin']),
      schema: {
        operationId: 'replayProviderEvent',
        tags: ['provider-events'],
        summary: 'Apply a parked, ignored or failed provider event again now',
        description:
          "Runs the provider's handler on the stored event again (e.g. after its product was mapped, or a " +
          'handler failure was fixed) and answers the event with its new outcome. A processed event: 409 ' +
          '`conflict`. Safe to repeat: grants keep their keys, so a replay never grants twice. Admin only.',
        security,
        params: EventParams,
        response: {
          200: ok(ProviderEventSchema, 'The event after the replay, with its new outcome'),
          ...errors(
            401,
            403,
            [404, 'No such provider event'],
            [409, 'The event was processed: nothing to replay'],
          ),
        },
      },
    },
    async (request, reply) => {
      const event = await app.services.inbox.replay(request.params.id);
      request.log.info({ id: event.id, status: event.status, note: event.note }, 'provider event replayed');
      return reply.ok(event);
    },
  );
}
