import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError, ERROR_STATUS, type ErrorCode, isDatabaseUnavailable } from '../errors.ts';
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
  408: 'request_timeout',
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
  /** Set on the issues of a `propertyNames` rule: the key that failed it. */
  propertyName?: string;
}

/** "body.amount must be integer", "body must NOT have additional property 'foo'": the field is always named. */
function describeValidation(context: string, issues: ValidationIssue[]): string[] {
  // `propertyNames` failures come twice: the key's own issue (with `propertyName`) and a generic one.
  const namesKey = issues.some((issue) => issue.propertyName !== undefined);
  const keyIssues = issues.filter((issue) => !(namesKey && issue.keyword === 'propertyNames'));
  return keyIssues.map((issue) => {
    const field = context + issue.instancePath.replace(/\//g, '.');
    if (issue.propertyName !== undefined) {
      return `${field} key '${issue.propertyName.slice(0, 50)}' ${issue.message ?? 'is invalid'}`;
    }
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
  if (isDatabaseUnavailable(err)) return new AppError('service_unavailable', 'The database is unavailable');
  const pgCode = typeof e?.code === 'string' ? e.code : '';
  if (pgCode === '40001' || pgCode === '40P01' || pgCode === '57014' || pgCode === '55P03') {
    return new AppError('service_unavailable', 'The service is busy; retry the request');
  }
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

/** The error envelope; `status` overrides the code's status for the HTTP layer's own 414 and 431. */
export function errorBody(err: AppError, status = err.statusCode) {
  return {
    isSuccess: false as const,
    statusCode: status,
    code: err.code,
    data: null,
    errors: err.details,
    timestamp: new Date().toISOString(),
  };
}

/** Path parameters longer than this answer 414 (the longest declared parameter, a user id, is 255). */
export const MAX_PARAM_LENGTH = 512;

/**
 * Fastify's `frameworkErrors`: what the router refuses before any route or hook runs (bad %-encoding,
 * a path parameter over MAX_PARAM_LENGTH), in the envelope.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  let appError: AppError;
  let status: number | undefined;
  if (err.code === 'FST_ERR_BAD_URL') {
    appError = new AppError('validation_failed', 'The URL path is not valid (bad %-encoding)');
  } else if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    appError = new AppError(
      'validation_failed',
      `A path parameter is longer than ${MAX_PARAM_LENGTH} characters`,
    );
    status = 414;
  } else {
    appError = toAppError(err);
  }
  request.log.info({ code: appError.code, status: status ?? appError.statusCode }, appError.message);
  return reply.code(status ?? appError.statusCode).send(errorBody(appError, status));
}

/**
 * Fastify's `clientErrorHandler`: a request Node's HTTP parser refused (malformed request line or header,
 * headers over the limit) or that did not arrive within the request timeout. No request object exists:
 * the envelope is written on the socket, which is then closed, as Node itself does.
 */
export function clientErrorHandler(requestTimeoutMs: number) {
  return function onClientError(
    this: FastifyInstance,
    err: Error & { code?: string },
    socket: Socket & { _httpMessage?: { headersSent?: boolean } },
  ) {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let appError: AppError;
    let status: number | undefined;
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      appError = new AppError(
        'request_timeout',
        `The request did not arrive within ${requestTimeoutMs} ms (REQUEST_TIMEOUT_MS)`,
      );
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      appError = new AppError('validation_failed', 'The request headers are larger than the limit');
      status = 431;
    } else {
      appError = new AppError('validation_failed', 'Malformed HTTP request (request line or a header)');
    }
    const statusCode = status ?? appError.statusCode;
    this.log.info({ code: appError.code, status: statusCode, reason: err.code }, appError.message);
    // A response already under way cannot be replaced: only close.
    if (socket.writable && !socket._httpMessage?.headersSent) {
      const body = JSON.stringify(errorBody(appError, status));
      socket.write(
        `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? ''}\r\n` +
          'Content-Type: application/json; charset=utf-8\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          'Connection: close\r\n\r\n' +
          body,
      );
    }
    socket.destroy();
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
    if (appError.code === 'rate_limited' && !reply.hasHeader('retry-after')) {
      const retryAfter = (appError as { retryAfter?: unknown }).retryAfter;
      reply.header('retry-after', String(typeof retryAfter === 'number' ? retryAfter : 60));
    }
    return reply.code(appError.statusCode).send(errorBody(appError));
  });

  app.setNotFoundHandler((request, reply) => {
    const err = new AppError('not_found', `Route ${request.method} ${request.url.split('?')[0]} not found`);
    return reply.code(404).send(errorBody(err));
  });
}

export default fp(envelope, { name: 'envelope' });
export { ERROR_STATUS };
