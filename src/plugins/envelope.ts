import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { fromDatabaseError } from '../db/errors.ts';
import { AppError, ERROR_STATUS, type ErrorCode } from '../errors.ts';
import { ErrorEnvelope } from '../schemas.ts';

export interface SuccessEnvelope<T> {
  isSuccess: true;
  statusCode: number;
  data: T;
  errors: never[];
  timestamp: string;
}

declare module 'fastify' {
  interface FastifyReply {
    /** Sets the status and returns the success envelope around `data`. */
    ok<T>(data: T, statusCode?: number): SuccessEnvelope<T>;
  }
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'validation_failed',
  401: 'unauthorized',
  402: 'insufficient_credits',
  403: 'forbidden',
  404: 'not_found',
  405: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'service_unavailable',
};

interface ValidationIssue {
  instancePath: string;
  message?: string;
  keyword: string;
  params: Record<string, unknown>;
}

/** "body.amount must be integer", "body must NOT have additional property 'foo'": the field is always named. */
function describeValidation(context: string, issues: ValidationIssue[]): string[] {
  return issues.map((issue) => {
    const field = context + issue.instancePath.replace(/\//g, '.');
    if (issue.keyword === 'additionalProperties') {
      return `${field} must NOT have additional property '${String(issue.params.additionalProperty)}'`;
    }
    if (issue.keyword === 'required') {
      return `${field}.${String(issue.params.missingProperty)} is required`;
    }
    return `${field} ${issue.message ?? 'is invalid'}`;
  });
}

/** Maps any thrown error to the catalogue; 5xx messages never carry internals. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
  if (e?.validation) {
    const messages = describeValidation(e.validationContext ?? 'request', e.validation);
    return new AppError('validation_failed', messages[0] ?? 'Invalid request', messages);
  }
  const fromDatabase = fromDatabaseError(err);
  if (fromDatabase) return fromDatabase;
  const pgCode = typeof e?.code === 'string' ? e.code : '';
  if (
    pgCode === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
    e instanceof SyntaxError ||
    pgCode === 'FST_ERR_CTP_INVALID_JSON_BODY'
  ) {
    return new AppError('validation_failed', 'Body is not valid JSON');
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = CODE_BY_STATUS[status] ?? 'validation_failed';
    const message =
      code === 'payload_too_large'
        ? 'Request body is larger than the limit'
        : code === 'unsupported_media_type'
          ? `Unsupported Content-Type; send application/json`
          : (e.message ?? 'Bad request');
    return new AppError(code, message);
  }
  return new AppError('internal_error', 'Internal server error');
}

export function errorBody(err: AppError) {
  return {
    isSuccess: false as const,
    statusCode: err.statusCode,
    code: err.code,
    data: null,
    errors: err.details,
    timestamp: new Date().toISOString(),
  };
}

async function envelope(app: FastifyInstance) {
  app.addSchema(ErrorEnvelope);
  app.decorateReply('ok', function ok<T>(this: FastifyReply, data: T, statusCode = 200): SuccessEnvelope<T> {
    this.code(statusCode);
    return { isSuccess: true, statusCode, data, errors: [], timestamp: new Date().toISOString() };
  });

  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const appError = toAppError(err);
    if (appError.statusCode >= 500) {
      request.log.error({ err }, 'request failed');
    } else {
      request.log.info({ code: appError.code, status: appError.statusCode }, appError.message);
    }
    if (appError.code === 'rate_limited' && !reply.hasHeader('retry-after'))
      reply.header('retry-after', '60');
    return reply.code(appError.statusCode).send(errorBody(appError));
  });

  // Once closing, a request that still arrives (on a kept-alive connection busy when close began) is refused
  // in the envelope, and its connection closed, so the client retries on another instance.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    done(new AppError('service_unavailable', 'The service is shutting down; retry the request'));
  });

  app.setNotFoundHandler((request, reply) => {
    const err = new AppError('not_found', `Route ${request.method} ${request.url.split('?')[0]} not found`);
    return reply.code(404).send(errorBody(err));
  });
}

export default fp(envelope, { name: 'envelope' });
export { ERROR_STATUS };
