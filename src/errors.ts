import {
  isMessageKey,
  type Language,
  type Message,
  type MessageKey,
  msg,
  type ParamsArg,
  type ParamValue,
  render,
} from './messages.ts';

/** The error catalogue: every error the API answers has one of these codes. */
export const ERROR_STATUS = {
  validation_failed: 400,
  invalid_signature: 400,
  unauthorized: 401,
  insufficient_credits: 402,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  idempotency_key_reused: 409,
  request_timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** A catalogue message, or a plain string for a message not yet in the catalogue (shown as is in every language). */
export type MessageLike = Message | string;

/**
 * An error the API answers: a code from the catalogue above and messages from src/messages.ts, rendered in
 * the request's language by the one error handler. `message` (and `details`) are the English texts, for logs.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly messages: readonly MessageLike[];
  constructor(code: ErrorCode, message: MessageLike, details: readonly MessageLike[] = [message]) {
    super(render(message, 'en'));
    this.name = 'AppError';
    this.code = code;
    this.statusCode = ERROR_STATUS[code];
    this.messages = details;
  }

  /** The English texts of the messages. */
  get details(): string[] {
    return this.render('en');
  }

  /** The messages in `language`, as the envelope's `errors` carries them. */
  render(language: Language): string[] {
    return this.messages.map((m) => render(m, language));
  }
}

/**
 * Helpers that build an AppError of one code from a catalogue key and its params:
 * `throw notFound('package.not_found')`, `throw conflict('package.product_id_taken', { productId, packageId })`.
 * A plain string still compiles (a message not yet in the catalogue, untranslated); the messages test lists
 * every such call so it can be moved into the catalogue.
 */
export interface ErrorHelper {
  <K extends MessageKey>(key: K, ...params: ParamsArg<K>): AppError;
  <S extends string>(text: S extends MessageKey ? never : S): AppError;
}

function helper(code: ErrorCode, untranslated: (text: string) => string = (text) => text): ErrorHelper {
  return ((keyOrText: string, params?: Record<string, ParamValue>) =>
    new AppError(
      code,
      isMessageKey(keyOrText) ? { key: keyOrText, params: params ?? {} } : untranslated(keyOrText),
    )) as ErrorHelper;
}

/** `notFound('package.not_found')`; the older form, a noun such as "Hold", still reads "Hold not found". */
export const notFound = helper('not_found', (what) => `${what} not found`);
export const conflict = helper('conflict');
export const badRequest = helper('validation_failed');
export const unavailable = helper('service_unavailable');
const unauthorizedHelper = helper('unauthorized');
const forbiddenHelper = helper('forbidden');
/** `unauthorized()`: "Missing or invalid credentials". */
export const unauthorized = ((...args: [string?, Record<string, ParamValue>?]) =>
  args[0] === undefined
    ? new AppError('unauthorized', msg('auth.missing'))
    : (unauthorizedHelper as (k: string, p?: Record<string, ParamValue>) => AppError)(
        args[0],
        args[1],
      )) as ErrorHelper & (() => AppError);
/** `forbidden()`: "Not allowed to access this resource". */
export const forbidden = ((...args: [string?, Record<string, ParamValue>?]) =>
  args[0] === undefined
    ? new AppError('forbidden', msg('auth.not_allowed'))
    : (forbiddenHelper as (k: string, p?: Record<string, ParamValue>) => AppError)(
        args[0],
        args[1],
      )) as ErrorHelper & (() => AppError);
