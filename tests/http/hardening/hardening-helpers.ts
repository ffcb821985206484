/** A cursor as the service encodes them: base64url JSON. */
export const cursorOf = (json: string) => Buffer.from(json).toString('base64url');

/** JSON text nested `depth` levels deep, built as text (no recursion in the test either). */
export const deepJson = (depth: number, leaf = '1') => '{"a":'.repeat(depth) + leaf + '}'.repeat(depth);
