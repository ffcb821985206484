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
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details: string[];
  constructor(code: ErrorCode, message: string, details: string[] = [message]) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.statusCode = ERROR_STATUS[code];
    this.details = details;
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
export const conflict = (message: string) => new AppError('conflict', message);
export const unauthorized = (message = 'Missing or invalid credentials') =>
  new AppError('unauthorized', message);
export const forbidden = (message = 'Not allowed') => new AppError('forbidden', message);
export const unavailable = (message: string) => new AppError('service_unavailable', message);
export const badRequest = (message: string) => new AppError('validation_failed', message);
