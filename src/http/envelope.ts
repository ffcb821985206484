import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import localizeRuModule from 'ajv-i18n/localize/ru/index.js';
import { fromDatabaseError } from '../db/errors.ts';
import { createOutageLog, isOutageError, type OutageLog } from '../db/outage.ts';
import { AppError, ERROR_STATUS, type ErrorCode } from '../errors.ts';
import { type Language, languageOf, type Message, msg } from '../messages.ts';
import { ERROR_SCHEMAS } from './openapi.ts';
import { ErrorEnvelope } from './schemas.ts';

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
  schemaPath?: string;
  /** Set on the issues of a `propertyNames` rule: the key that failed it. */
  propertyName?: string;
  /** With Ajv's `verbose`: the value that failed, and the schema around the rule. */
  data?: unknown;
  parentSchema?: { properties?: Record<string, unknown> };
}

/**
 * The Ajv options of every request schema. allErrors: every problem of a request at once (the envelope lists
 * at most MAX_VALIDATION_MESSAGES); verbose: the failing value and its schema, so a message can quote what was
 * sent and name the known fields.
 */
export const AJV_OPTIONS = {
  strict: false,
  useDefaults: true,
  removeAdditional: false,
  allErrors: true,
  verbose: true,
} as const;

/** At most this many problems are listed for one request (every one of them, up to it). */
export const MAX_VALIDATION_MESSAGES = 20;

/** Ajv's own text for an issue, in both languages (ajv-i18n translates it; field names stay as they are). */
function ajvReason(issue: ValidationIssue) {
  const copy = { ...issue, schemaPath: issue.schemaPath ?? '' };
  localizeRu([copy as never]);
  return { en: issue.message ?? 'is invalid', ru: copy.message ?? issue.message ?? 'некорректно' };
}

/** A value as an error message quotes it: short, JSON. */
function shown(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 50 ? `${text.slice(0, 47)}...` : text;
}

/** Levenshtein distance, for "did you mean" on a mistyped field name (short names only). */
function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64 || b.length > 64) return 99;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] ?? 99;
}

/** The allowed values an issue names: a `const` (a TypeBox literal) or an `enum`. */
function allowedValues(issue: ValidationIssue): unknown[] | undefined {
  if (issue.keyword === 'const') return [issue.params.allowedValue];
  if (issue.keyword === 'enum' && Array.isArray(issue.params.allowedValues))
    return issue.params.allowedValues;
  return undefined;
}

/**
 * Ajv reports a union of literals (`'purchase' | 'package'`, a scope) as one `const` failure per branch and
 * an `anyOf` line. Each such union becomes one issue naming every allowed value; other unions stay as they are.
 */
function mergeUnions(
  issues: ValidationIssue[],
): (ValidationIssue | { oneOf: unknown[]; issue: ValidationIssue })[] {
  const out: (ValidationIssue | { oneOf: unknown[]; issue: ValidationIssue })[] = [];
  const absorbed = new Set<ValidationIssue>();
  for (const issue of issues) {
    if (issue.keyword !== 'anyOf' || !issue.schemaPath) continue;
    const prefix = `${issue.schemaPath}/`;
    const branches = issues.filter((i) => i !== issue && i.schemaPath?.startsWith(prefix));
    const values = branches.map(allowedValues);
    if (
      branches.length > 0 &&
      values.every((v) => v !== undefined) &&
      branches.every((b) => b.instancePath === issue.instancePath)
    ) {
      for (const b of branches) absorbed.add(b);
      absorbed.add(issue);
      out.push({ oneOf: values.flat() as unknown[], issue });
    }
  }
  for (const issue of issues) if (!absorbed.has(issue)) out.push(issue);
  // Unknown fields first: a mistyped name is usually why a required field is "missing".
  const rank = (i: (typeof out)[number]) =>
    'oneOf' in i ? 1 : i.keyword === 'additionalProperties' ? 0 : i.keyword === 'required' ? 2 : 1;
  return out.sort((a, b) => rank(a) - rank(b));
}

/**
 * Every problem of a request part, each naming its field: "body has an unknown field 'amout' (did you mean
 * 'amount'?)", "querystring.expand.0 must be one of: purchase (got "purchases")", "body.amount must be integer".
 */
function describeValidation(context: string, issues: ValidationIssue[]): Message[] {
  // `propertyNames` failures come twice: the key's own issue (with `propertyName`) and a generic one.
  const namesKey = issues.some((issue) => issue.propertyName !== undefined);
  const keyIssues = issues.filter((issue) => !(namesKey && issue.keyword === 'propertyNames'));
  const messages = mergeUnions(keyIssues).map((item): Message => {
    if ('oneOf' in item) {
      const field = context + item.issue.instancePath.replace(/\//g, '.');
      const values = [...new Set(item.oneOf.map((v) => (typeof v === 'string' ? v : shown(v))))].join(', ');
      return item.issue.data === undefined
        ? msg('validation.one_of', { field, values })
        : msg('validation.one_of_got', { field, values, got: shown(item.issue.data) });
    }
    const issue = item;
    const field = context + issue.instancePath.replace(/\//g, '.');
    if (issue.propertyName !== undefined) {
      return msg('validation.invalid_key', {
        field,
        key: issue.propertyName.slice(0, 50),
        reason: ajvReason(issue),
      });
    }
    if (issue.keyword === 'additionalProperties') {
      const property = String(issue.params.additionalProperty).slice(0, 100);
      const known = Object.keys(issue.parentSchema?.properties ?? {});
      const close = known
        .map((k) => ({ k, d: distance(property.toLowerCase(), k.toLowerCase()) }))
        .filter((c) => c.d <= 2)
        .sort((a, b) => a.d - b.d)[0];
      const suggestion = close
        ? { en: ` (did you mean '${close.k}'?)`, ru: ` (возможно, имелось в виду '${close.k}')` }
        : { en: '', ru: '' };
      return known.length > 0
        ? msg('validation.unknown_field', { field, property, suggestion, known: known.join(', ') })
        : msg('validation.unknown_field_none', { field, property });
    }
    if (issue.keyword === 'required') {
      return msg('validation.required', { field, property: String(issue.params.missingProperty) });
    }
    const allowed = allowedValues(issue);
    if (allowed) {
      const values = allowed.map((v) => (typeof v === 'string' ? v : shown(v))).join(', ');
      return issue.data === undefined
        ? msg('validation.one_of', { field, values })
        : msg('validation.one_of_got', { field, values, got: shown(issue.data) });
    }
    return msg('validation.invalid', { field, reason: ajvReason(issue) });
  });
  return messages.slice(0, MAX_VALIDATION_MESSAGES);
}

/** Path parameters longer than this answer 414 (the longest declared parameter, a user id, is 255). */
export const MAX_PARAM_LENGTH = 512;

/** Errors of the HTTP layer (Fastify's own codes) that have a catalogue message. */
const FASTIFY_MESSAGES: Record<string, Message> = {
  FST_ERR_CTP_EMPTY_JSON_BODY: msg('request.invalid_json'),
  FST_ERR_CTP_INVALID_JSON_BODY: msg('request.invalid_json'),
  FST_ERR_CTP_BODY_TOO_LARGE: msg('request.too_large'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: msg('request.unsupported_media_type'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: msg('request.bad_content_length'),
  FST_ERR_BAD_URL: msg('request.bad_url'),
  FST_ERR_MAX_PARAM_LENGTH: msg('request.param_too_long', { max: MAX_PARAM_LENGTH }),
};

/** Maps any thrown error to the catalogue; 5xx messages never carry internals. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
  if (e?.validation) {
    const messages = describeValidation(e.validationContext ?? 'request', e.validation);
    return new AppError('validation_failed', messages[0] ?? msg('request.invalid'), messages);
  }
  const fromDatabase = fromDatabaseError(err);
  if (fromDatabase) return fromDatabase;
  const pgCode = typeof e?.code === 'string' ? e.code : '';
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

/**
 * The error envelope in `language`; `status` overrides the code's status for the HTTP layer's own 414 and 431.
 */
export function errorBody(err: AppError, language: Language = 'en', status = err.statusCode) {
  return {
    isSuccess: false as const,
    statusCode: status,
    code: err.code,
    data: null,
    errors: err.render(language),
    timestamp: new Date().toISOString(),
  };
}

/**
 * Fastify's `frameworkErrors`: what the router refuses before any route or hook runs (bad %-encoding,
 * a path parameter over MAX_PARAM_LENGTH), in the envelope.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  let appError: AppError;
  let status: number | undefined;
  if (err.code === 'FST_ERR_BAD_URL') {
    appError = new AppError('validation_failed', msg('request.bad_url'));
  } else if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    appError = new AppError('validation_failed', msg('request.param_too_long', { max: MAX_PARAM_LENGTH }));
    status = 414;
  } else {
    appError = toAppError(err);
  }
  request.log.info({ code: appError.code, status: status ?? appError.statusCode }, appError.message);
  return reply
    .code(status ?? appError.statusCode)
    .send(errorBody(appError, languageOf(request.headers['accept-language']), status));
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
      appError = new AppError('request_timeout', msg('request.timeout', { ms: requestTimeoutMs }));
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      appError = new AppError('validation_failed', msg('request.headers_too_large'));
      status = 431;
    } else {
      appError = new AppError('validation_failed', msg('request.malformed'));
    }
    const statusCode = status ?? appError.statusCode;
    this.log.info({ code: appError.code, status: statusCode, reason: err.code }, appError.message);
    // A response already under way cannot be replaced: only close.
    if (socket.writable && !socket._httpMessage?.headersSent) {
      // No request was parsed, so no Accept-Language: English.
      const body = JSON.stringify(errorBody(appError, 'en', status));
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

declare module 'fastify' {
  interface FastifyInstance {
    /** Database outages in the log: one line per state change and a count (src/db/outage.ts). */
    databaseOutage: OutageLog;
    /** From now on every request answers 503 with `Connection: close` (shutdown's drain, before close). */
    markClosing(): void;
  }
}

async function envelope(app: FastifyInstance) {
  app.decorate('databaseOutage', createOutageLog(app.log));
  app.addSchema(ErrorEnvelope);
  for (const schema of Object.values(ERROR_SCHEMAS)) app.addSchema(schema);
  app.decorateReply('ok', function ok<T>(this: FastifyReply, data: T, statusCode = 200): SuccessEnvelope<T> {
    this.code(statusCode);
    return { isSuccess: true, statusCode, data, errors: [], timestamp: new Date().toISOString() };
  });

  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const appError = toAppError(err);
    if (appError.statusCode >= 500 && (isOutageError(err) || isOutageError(appError))) {
      // One line per outage and a count, not a stack per request (src/db/outage.ts).
      app.databaseOutage.failed(err);
    } else if (appError.code === 'service_unavailable') {
      request.log.warn({ code: appError.code, status: appError.statusCode }, appError.message);
    } else if (appError.statusCode >= 500) {
      request.log.error({ err }, 'request failed');
    } else {
      request.log.info({ code: appError.code, status: appError.statusCode }, appError.message);
    }
    if (appError.code === 'rate_limited' && !reply.hasHeader('retry-after')) {
      const retryAfter = (appError as { retryAfter?: unknown }).retryAfter;
      reply.header('retry-after', String(typeof retryAfter === 'number' ? retryAfter : 60));
    }
    return reply
      .code(appError.statusCode)
      .send(errorBody(appError, languageOf(request.headers['accept-language'])));
  });

  // Once closing, a request that still arrives (on a kept-alive connection busy when close began) is refused
  // in the envelope, and its connection closed, so the client retries on another instance.
  let closing = false;
  const markClosing = () => {
    closing = true;
  };
  app.decorate('markClosing', markClosing);
  app.addHook('preClose', (done) => {
    markClosing();
    done();
  });

  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    done(new AppError('service_unavailable', msg('service.shutting_down')));
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
