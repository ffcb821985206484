import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { AppError, forbidden, unauthorized } from '../errors.ts';
import { msg } from '../messages.ts';
import type { Scope } from './schemas.ts';
import { API_KEY_PREFIX, type ApiKeysService, isPlausibleApiKey } from '../modules/api-keys/index.ts';
import { createAuthFailureLimiter } from './auth-failures.ts';
import { withinDeadline } from '../lib/deadline.ts';
import { isWellFormedText } from '../lib/text.ts';

export type Principal =
  | { kind: 'user'; userId: string; roles: string[] }
  | { kind: 'apiKey'; keyId: string; scopes: Scope[] };

/**
 * Who may call a route. `user`: any valid JWT (acting as its `sub`); `self`: a JWT whose `sub` is the
 * route's `:userId`; `admin` / `ops`: a JWT with that role; a scope: an API key holding it.
 * Admins pass every rule.
 */
export type Access = 'user' | 'self' | 'admin' | 'ops' | Scope;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** An onRequest hook that authenticates the caller and enforces the rule. */
    authorize(allow: readonly Access[]): onRequestHookHandler;
    /** Authenticates if credentials are present; never rejects a request without them. */
    identify(request: FastifyRequest): Promise<Principal | null>;
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub?: string; roles?: unknown; exp?: number };
  }
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('auth.bad_header');
    return match[1];
  }
  const apiKey = request.headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey : undefined;
}

function allows(principal: Principal, allow: readonly Access[], request: FastifyRequest): boolean {
  if (principal.kind === 'apiKey') return allow.some((a) => (principal.scopes as string[]).includes(a));
  if (principal.roles.includes('admin')) return true;
  for (const rule of allow) {
    if (rule === 'user') return true;
    if (rule === 'ops' && principal.roles.includes('ops')) return true;
    if (rule === 'self' && (request.params as { userId?: string }).userId === principal.userId) return true;
  }
  return false;
}

/** Who would pass a route's rule, in both languages, for its 403: the roles, the owner, the scopes. */
export function whatPasses(allow: readonly Access[]): { en: string; ru: string } {
  const roles = ['admin', ...(allow.includes('ops') ? ['ops'] : [])];
  const scopes = allow.filter((a) => a.includes(':'));
  const en: string[] = [];
  const ru: string[] = [];
  if (allow.includes('user')) {
    en.push('any user JWT');
    ru.push('JWT любого пользователя');
  }
  if (allow.includes('self')) {
    en.push("the account's own user JWT (sub equal to the userId in the path)");
    ru.push('JWT владельца счёта (sub равен userId в пути)');
  }
  en.push(`a JWT with role ${roles.join(' or ')}`);
  ru.push(`JWT с ролью ${roles.join(' или ')}`);
  if (scopes.length > 0) {
    en.push(`an API key with scope ${scopes.join(' or ')}`);
    ru.push(`API-ключ с правом ${scopes.join(' или ')}`);
  }
  const alternatives = (parts: string[], or: string) =>
    parts.length > 1 ? `${parts.slice(0, -1).join(', ')}${or}${parts[parts.length - 1]}` : (parts[0] ?? '');
  return {
    en: alternatives(en, ', or ') + (scopes.length ? '' : ' (API keys cannot call it)'),
    ru: alternatives(ru, ' или ') + (scopes.length ? '' : ' (API-ключам этот маршрут недоступен)'),
  };
}

async function auth(app: FastifyInstance, opts: { config: Config; apiKeys: ApiKeysService }) {
  const { jwt } = opts.config;
  await app.register(fastifyJwt, {
    secret: jwt.secret ?? { public: jwt.publicKey as string },
    verify: {
      algorithms: jwt.secret ? ['HS256'] : ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'],
      // fast-jwt skips the iss/aud checks for a token that lacks the claim: require it when one is configured.
      requiredClaims: ['exp', 'sub', ...(jwt.issuer ? ['iss'] : []), ...(jwt.audience ? ['aud'] : [])],
      ...(jwt.issuer ? { allowedIss: jwt.issuer } : {}),
      ...(jwt.audience ? { allowedAud: jwt.audience } : {}),
    },
  });
  app.decorateRequest('principal', null);

  const failures = createAuthFailureLimiter(opts.config.authFailuresPerMinute);

  /**
   * `blocked`: the address is over AUTH_FAILURES_PER_MINUTE. Then nothing that needs the database is tried:
   * an API key is looked up only when this process verified it recently, and any failure answers the 429.
   */
  async function authenticate(token: string, blocked: AppError | undefined): Promise<Principal> {
    const refuse = (
      key: 'auth.api_key_invalid' | 'auth.token_expired' | 'auth.token_invalid' | 'auth.token_no_sub',
    ) => blocked ?? new AppError('unauthorized', msg(key));
    if (token.startsWith(API_KEY_PREFIX)) {
      // A key this service cannot have issued is refused without a lookup.
      if (!isPlausibleApiKey(token)) throw refuse('auth.api_key_invalid');
      if (blocked && !opts.apiKeys.isKnown(token)) throw blocked;
      const key = await opts.apiKeys.verify(token);
      if (!key) throw refuse('auth.api_key_invalid');
      return { kind: 'apiKey', keyId: key.id, scopes: key.scopes };
    }
    let payload: { sub?: unknown; roles?: unknown };
    try {
      payload = app.jwt.verify(token);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      throw refuse(code.includes('EXPIRED') ? 'auth.token_expired' : 'auth.token_invalid');
    }
    // An ill-formed sub would be stored with U+FFFD in its place: "victim\ud800" must not become "victim\uFFFD".
    if (
      typeof payload.sub !== 'string' ||
      payload.sub.length === 0 ||
      payload.sub.length > 255 ||
      !isWellFormedText(payload.sub)
    ) {
      throw refuse('auth.token_no_sub');
    }
    const roles = Array.isArray(payload.roles)
      ? payload.roles.filter((r): r is string => typeof r === 'string')
      : [];
    return { kind: 'user', userId: payload.sub, roles };
  }

  app.decorate('identify', async (request: FastifyRequest): Promise<Principal | null> => {
    if (request.principal) return request.principal;
    const hasCredentials =
      request.headers.authorization !== undefined || request.headers['x-api-key'] !== undefined;
    if (!hasCredentials) return null;
    const blocked = failures.blocked(request.ip);
    try {
      const token = bearer(request);
      if (!token) return null;
      // An API key lookup on a frozen database answers within the request's deadline too.
      request.principal = await withinDeadline(request.deadline, authenticate(token, blocked));
      return request.principal;
    } catch (err) {
      if (err instanceof AppError && err.code === 'unauthorized') failures.recordFailure(request.ip);
      if (blocked && err instanceof AppError && err.code === 'unauthorized') throw blocked;
      throw err;
    }
  });

  app.decorate('authorize', (allow: readonly Access[]): onRequestHookHandler => {
    return async function authorizeHook(request) {
      const principal = await app.identify(request);
      if (!principal) throw unauthorized();
      if (!allows(principal, allow, request)) {
        const scopes = allow.filter((a) => a.includes(':'));
        throw principal.kind === 'apiKey' && scopes.length > 0
          ? forbidden('auth.scope_missing', { scopes: scopes.join(', ') })
          : forbidden('auth.needs', { needs: whatPasses(allow) });
      }
    };
  });
}

export default fp(auth, { name: 'auth', dependencies: ['envelope'] });

/** The user id a JWT caller acts as; routes that accept only users call this after `authorize(['user'])`. */
export function callerUserId(request: FastifyRequest): string {
  const p = request.principal;
  if (p?.kind !== 'user') throw forbidden('auth.user_token_only');
  return p.userId;
}
