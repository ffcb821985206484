import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { badRequest } from '../errors.ts';
import { describeIllFormed, findIllFormed } from '../lib/text.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The body is a payment provider's event: it is not refused for ill-formed text (a provider would retry
     * a valid delivery for ever); the route makes it storable instead (`toStorable`).
     */
    providerPayload?: boolean;
  }
}

function check(value: unknown, root: string) {
  const found = findIllFormed(value, root);
  if (found) throw badRequest(describeIllFormed(found));
}

/**
 * Every text the service is given is well-formed Unicode without NUL, and JSON bodies nest at most
 * MAX_JSON_DEPTH levels: 400 `validation_failed` naming the field otherwise. Params, query and headers are
 * checked before authentication, the body before any preHandler hook or handler: no query sees them.
 */
async function inputGuard(app: FastifyInstance) {
  app.addHook('onRequest', async (request: FastifyRequest) => {
    check(request.params, 'params');
    check(request.query, 'querystring');
    check(request.headers, 'headers');
  });
  // After the schema, which refuses most oversized bodies (a metadata of 100,000 keys) at the cost of a
  // count, so only bodies the schema bounds are walked; before every preHandler and handler.
  app.addHook('preHandler', async (request: FastifyRequest) => {
    if (request.routeOptions.config.providerPayload) return;
    check(request.body, 'body');
  });
}

export default fp(inputGuard, { name: 'input-guard', dependencies: ['envelope'] });
