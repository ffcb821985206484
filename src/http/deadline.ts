import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createDeadline, type Deadline, runWithDeadline, withinDeadline } from '../lib/deadline.ts';

declare module 'fastify' {
  interface FastifyRequest {
    deadline: Deadline | undefined;
  }
  interface FastifyContextConfig {
    /** false: the route has no request deadline (a long export that streams, say). */
    deadline?: boolean;
  }
}

/** What a request may take beyond DATABASE_QUERY_TIMEOUT_MS before it answers 503 anyway. */
export const DEADLINE_MARGIN_MS = 500;

/**
 * One deadline per request, not per query: DATABASE_QUERY_TIMEOUT_MS + DEADLINE_MARGIN_MS from its arrival,
 * covering authentication, a connect then a query, and the ledger's group commit queue. Past it, the request
 * answers 503 `service_unavailable` in the envelope and what it still had queued is dropped.
 */
async function deadlines(app: FastifyInstance, opts: { queryTimeoutMs: number }) {
  const budget = opts.queryTimeoutMs;
  app.decorateRequest('deadline', undefined);
  app.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config?.deadline === false) return done();
    const deadline = createDeadline(budget + DEADLINE_MARGIN_MS, budget);
    request.deadline = deadline;
    reply.raw.once('close', deadline.clear);
    done();
  });
  app.addHook('onRoute', (route) => {
    if (route.config?.deadline === false) return;
    const handler = route.handler;
    route.handler = function withDeadline(request, reply) {
      const deadline = request.deadline;
      if (!deadline) return handler.call(this, request, reply);
      const result = runWithDeadline(deadline, () => handler.call(this, request, reply));
      // A synchronous handler waits on nothing: its answer goes back as Fastify expects it.
      if (!result || typeof (result as { then?: unknown }).then !== 'function') return result;
      return withinDeadline(deadline, Promise.resolve(result)) as ReturnType<typeof handler>;
    };
  });
}

export default fp(deadlines, { name: 'deadlines' });
