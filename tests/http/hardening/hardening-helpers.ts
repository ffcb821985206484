import { expect } from 'vitest';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The error envelope with this status and code; returns its `errors` joined, for message checks. */
export function expectError(res: { statusCode: number; body: string }, status: number, code: string): string {
  expect({ status: res.statusCode, body: res.body.slice(0, 300) }).toMatchObject({ status });
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
  return (body.errors as string[]).join('\n');
}

/** A cursor as the service encodes them: base64url JSON. */
export const cursorOf = (json: string) => Buffer.from(json).toString('base64url');

/** JSON text nested `depth` levels deep, built as text (no recursion in the test either). */
export const deepJson = (depth: number, leaf = '1') => '{"a":'.repeat(depth) + leaf + '}'.repeat(depth);
