import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Where `npm run console:build` (and the Docker build stage) writes the operations console. */
export const CONSOLE_DIST = fileURLToPath(new URL('../../console/dist/', import.meta.url));

export interface ConsoleOptions {
  /** The built console (index.html and assets/); CONSOLE_DIST unless a test points elsewhere. */
  root?: string;
}

/**
 * The operations console (CONTRACT section 14): a single-page app under /console/. Not wrapped in
 * fastify-plugin on purpose: helmet's headers (a strict CSP, frame and referrer rules) apply to these routes
 * only, and the JSON API keeps its own headers. No route here needs authentication: the app signs in
 * client-side and calls the public API with the operator's credential.
 */
export default async function consolePlugin(app: FastifyInstance, opts: ConsoleOptions = {}) {
  const root = opts.root ?? CONSOLE_DIST;
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // Whether the service is behind TLS is the deployment's call (a load balancer's), not the console's.
    strictTransportSecurity: false,
  });

  // Hashed file names: a new build has new names, so assets may be cached for good.
  await app.register(fastifyStatic, {
    root: path.join(root, 'assets'),
    prefix: '/console/assets/',
    index: false,
    wildcard: true,
    immutable: true,
    maxAge: '365d',
    schemaHide: true,
  });

  let page: Buffer | undefined;
  async function index(request: FastifyRequest, reply: FastifyReply) {
    // The router ignores trailing slashes, so /console reaches this handler too: send it to /console/, where
    // the page's relative URLs resolve.
    const pathname = request.url.split('?')[0] ?? '';
    if (pathname === '/console') {
      const query = request.url.slice(pathname.length);
      return reply.redirect(`/console/${query}`, 301);
    }
    page ??= await readFile(path.join(root, 'index.html')).catch(() => undefined);
    reply.header('cache-control', 'no-store');
    if (!page) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The console is not built: run `npm run console:build` (npm start does it when needed).\n');
    }
    return reply.type('text/html; charset=utf-8').send(page);
  }
  const route = { schema: { hide: true } };
  app.get('/console', route, index);
  app.get('/console/*', route, index);
}
