import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import localizeRuModule from 'ajv-i18n/localize/ru/index.js';
import { AppError, ERROR_STATUS, type ErrorCode, isDatabaseUnavailable } from '../errors.ts';
import { type Language, languageOf, type Message, msg } from '../messages.ts';
import { ERROR_SCHEMAS } from '../openapi.ts';
import { ErrorEnvelope } from '../schemas.ts';

const localizeRu = localizeRuModule as unknown as (errors: unknown[]) => void;

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
  schemaPath?: string;
}

/** Ajv's own text for an issue, in both languages (ajv-i18n translates it; field names stay as they are). */
function ajvReason(issue: ValidationIssue) {
  const copy = { ...issue, schemaPath: issue.schemaPath ?? '' };
  localizeRu([copy as never]);
  return { en: issue.message ?? 'is invalid', ru: copy.message ?? issue.message ?? 'некорректно' };
}

/** "body.amount must be integer", "body must NOT have additional property 'foo'": the field is always named. */
function describeValidation(context: string, issues: ValidationIssue[]): Message[] {
  return issues.map((issue) => {
    const field = context + issue.instancePath.replace(/\//g, '.');
    if (issue.keyword === 'additionalProperties') {
      return msg('validation.additional_property', {
        field,
        property: String(issue.params.additionalProperty),
      });
    }
    if (issue.keyword === 'required') {
      return msg('validation.required', { field, property: String(issue.params.missingProperty) });
    }
    return msg('validation.invalid', { field, reason: ajvReason(issue) });
  });
}

/** Errors of the HTTP layer (Fastify's own codes) that have a catalogue message. */
const FASTIFY_MESSAGES: Record<string, Message> = {
  FST_ERR_CTP_EMPTY_JSON_BODY: msg('request.invalid_json'),
  FST_ERR_CTP_INVALID_JSON_BODY: msg('request.invalid_json'),
  FST_ERR_CTP_BODY_TOO_LARGE: msg('request.too_large'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: msg('request.unsupported_media_type'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: msg('request.bad_content_length'),
  FST_ERR_BAD_URL: msg('request.bad_url'),
  FST_ERR_MAX_PARAM_LENGTH: msg('request.param_too_long'),
};

/** Maps any thrown error to the catalogue; 5xx messages never carry internals. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
  if (e?.validation) {
    const messages = describeValidation(e.validationContext ?? 'request', e.validation);
    return new AppError('validation_failed', messages[0] ?? msg('request.invalid'), messages);
  }
  if (isDatabaseUnavailable(err))
    return new AppError('service_unavailable', msg('service.database_unavailable'));
  const pgCode = typeof e?.code === 'string' ? e.code : '';
  if (pgCode === '40001' || pgCode === '40P01' || pgCode === '57014' || pgCode === '55P03') {
    return new AppError('service_unavailable', msg('service.busy'));
  }
  if (e instanceof SyntaxError) return new AppError('validation_failed', msg('request.invalid_json'));
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = CODE_BY_STATUS[status] ?? 'validation_failed';
    const known =
      FASTIFY_MESSAGES[pgCode] ??
      (code === 'payload_too_large'
        ? msg('request.too_large')
        : code === 'unsupported_media_type'
          ? msg('request.unsupported_media_type')
          : undefined);
    return new AppError(
      code,
      known ?? (e.message ? msg('request.rejected', { detail: e.message }) : msg('request.invalid')),
    );
  }
  return new AppError('internal_error', msg('service.internal_error'));
}

export function errorBody(err: AppError, language: Language = 'en') {
  return {
    isSuccess: false as const,
    statusCode: err.statusCode,
    code: err.code,
    data: null,
    errors: err.render(language),
    timestamp: new Date().toISOString(),
  };
}

async function envelope(app: FastifyInstance) {
  app.addSchema(ErrorEnvelope);
  for (const schema of Object.values(ERROR_SCHEMAS)) app.addSchema(schema);
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
    return reply
      .code(appError.statusCode)
      .send(errorBody(appError, languageOf(request.headers['accept-language'])));
  });

  app.setNotFoundHandler((request, reply) => {
    const err = new AppError(
      'not_found',
      msg('route.not_found', { method: request.method, path: request.url.split('?')[0] ?? '' }),
    );
    return reply.code(404).send(errorBody(err, languageOf(request.headers['accept-language'])));
  });
}

export default fp(envelope, { name: 'envelope' });
export { ERROR_STATUS };
