import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import { pendingMigrations } from '../../db/migrator.ts';
import { unavailable } from '../../errors.ts';
import { Envelope, errorResponses } from '../../schemas.ts';
import type { App } from '../../types.ts';

export default async function healthRoutes(app: App) {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process is up',
        response: { 200: Envelope(Type.Object({ status: Type.Literal('ok') })) },
      },
    },
    async (_request, reply) => reply.ok({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: the database answers and every migration is applied',
        response: { 200: Envelope(Type.Object({ status: Type.Literal('ready') })), ...errorResponses },
      },
    },
    async (_request, reply) => {
      let pending: number;
      try {
        pending = await pendingMigrations((text) => sql.raw(text).execute(app.db));
      } catch {
        throw unavailable('The database is unavailable');
      }
      if (pending > 0) throw unavailable(`${pending} migration(s) not applied yet`);
      return reply.ok({ status: 'ready' as const });
    },
  );
}
