import { expect } from 'vitest';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** What expectError reads: an app.inject response, or a raw HTTP answer with its body as text. */
export interface ErrorResponse {
  statusCode: number;
  body: string;
  headers?: Record<string, unknown>;
}

/**
 * The error envelope with this status and code, and nothing else: `{ isSuccess: false, statusCode, code,
 * data: null, errors: [strings, at least one], timestamp }` as JSON. Returns the `errors` joined, for checks of
 * the message. The one assertion of an error answer that every test uses.
 */
export function expectError(res: ErrorResponse, status: number, code: string): string {
  // The body's start in the message: a wrong status then says what came instead.
  expect(res.statusCode, res.body.slice(0, 300)).toBe(status);
  if (res.headers) expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(res.body);
  expect(body).toEqual({
    isSuccess: false,
    statusCode: status,
    code,
    data: null,
    errors: expect.any(Array),
    timestamp: expect.stringMatching(ISO),
  });
  expect(body.errors.length).toBeGreaterThan(0);
  for (const e of body.errors) expect(typeof e).toBe('string');
  return (body.errors as string[]).join('\n');
}
