import { Type } from '@sinclair/typebox';
import { errors, ok } from '../../http/openapi.ts';
import { bearerSecurity, Page, PageQuery, Timestamp } from '../../http/schemas.ts';
import { EVENT_TYPES } from './event-types.ts';
import type { App } from '../../http/types.ts';

export const EventTypeSchema = Type.Union(
  EVENT_TYPES.map((t) => Type.Literal(t)),
  { description: 'What happened' },
);

export const EventSchema = Type.Object(
  {
    id: Type.String({ description: '`evt_…`; also the `webhook-id` header of its deliveries' }),
    type: EventTypeSchema,
    createdAt: Timestamp,
    data: Type.Record(Type.String(), Type.Unknown(), {
      description:
        'The resources concerned: `entry` (a ledger entry) and `balance` for credits.*, `purchase` and ' +
        '`previousStatus` for purchase.*, `hold` for hold.expired, `balance` (and `threshold`, `endpointId` for ' +
        'balance.low) for balance.*',
    }),
  },
  { $id: 'Event' },
);

export default async function eventRoutes(app: App) {
  const readers = app.authorize(['admin', 'ops']);

  app.get(
    '/events',
    {
      onRequest: readers,
      schema: {
        operationId: 'listEvents',
        tags: ['events'],
        summary: 'List the event log (admin, ops)',
        description:
          "The service's own events, newest first: every change webhooks report, written in the same transaction " +
          'as the change. The body of each is what webhook endpoints receive.',
        security: bearerSecurity,
        querystring: PageQuery,
        response: {
          200: ok(Page(EventSchema), 'A page of events, newest first; `nextCursor` is null on the last'),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) =>
      reply.ok(await app.services.events.list(request.query.limit, request.query.cursor)),
  );

  app.get(
    '/events/:id',
    {
      onRequest: readers,
      schema: {
        operationId: 'getEvent',
        tags: ['events'],
        summary: 'Read one event (admin, ops)',
        description: 'One event of the log by its `evt_…` id (the `webhook-id` of its deliveries).',
        security: bearerSecurity,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: {
          200: ok(EventSchema, 'The event, as webhook endpoints receive it'),
          ...errors(401, 403, [404, 'No such event']),
        },
      },
    },
    async (request, reply) => reply.ok(await app.services.events.get(request.params.id)),
  );
}
