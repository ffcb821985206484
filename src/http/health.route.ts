import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import { pendingMigrations } from '../db/migrator.ts';
import { unavailable } from '../errors.ts';
import { errorsWithoutRateLimit, ok } from './openapi.ts';
import type { App } from './types.ts';

export default async function healthRoutes(app: App) {
  app.get(
    '/healthz',
    {
      schema: {
        operationId: 'getLiveness',
        tags: ['operations'],
        summary: 'Liveness: the process is up',
        description: 'Answers 200 while the process runs; it does not touch the database.',
        response: { 200: ok(Type.Object({ status: Type.Literal('ok') }), 'The process is up') },
      },
    },
    async (_request, reply) => reply.ok({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'getReadiness',
        tags: ['operations'],
        summary: 'Readiness: the database answers and every migration is applied',
        description:
          'Answers 200 when the service can serve requests; 503 while the database is unreachable or migrations are pending.',
        response: {
          200: ok(Type.Object({ status: Type.Literal('ready') }), 'Ready to serve'),
          ...errorsWithoutRateLimit([503, 'The database is unreachable, or migrations are pending']),
        },
      },
    },
    async (_request, reply) => {
      let pending: number;
      try {
        pending = await pendingMigrations((text) => sql.raw(text).execute(app.db));
      } catch {
        throw unavailable('service.database_unavailable');
      }
      if (pending > 0) throw unavailable('service.migrations_pending', { count: pending });
      return reply.ok({ status: 'ready' as const });
    },
  );
}
