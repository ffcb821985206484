import { describe, expect, it } from 'vitest';
import { findIllFormed, jsonDepth, MAX_JSON_DEPTH, toStorable } from '../../src/lib/text.ts';

const nested = (depth: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
};

describe('text helpers', () => {
  it('findIllFormed allows MAX_JSON_DEPTH levels and names the first place beyond', () => {
    expect(findIllFormed(nested(MAX_JSON_DEPTH), 'body')).toBeUndefined();
    expect(findIllFormed(nested(MAX_JSON_DEPTH + 1), 'body')).toEqual({
      field: `body${'.a'.repeat(MAX_JSON_DEPTH)}`,
      problem: 'depth',
    });
    expect(findIllFormed(nested(100_000), 'body')?.problem).toBe('depth');
  });

  it('findIllFormed names the field of a bad value, key or array item', () => {
    expect(findIllFormed({ a: [{ b: 'ok' }, { c: 'x\u0000' }] }, 'body')).toEqual({
      field: 'body.a[1].c',
      problem: 'text',
    });
    expect(findIllFormed({ 'k\udfff': 1 }, 'body')?.field).toBe('body.k\uFFFD');
    expect(findIllFormed('\ud800', 'headers.x')).toEqual({ field: 'headers.x', problem: 'text' });
    expect(findIllFormed({ ok: ['\ud83d\ude00', 'é', ''] }, 'body')).toBeUndefined();
  });

  it('toStorable replaces NUL and lone surrogates, copies rather than mutates, keeps __proto__ a plain key', () => {
    const input = JSON.parse('{"__proto__":{"x":"a\\u0000"},"list":["\\ud800",1,null],"ok":"fine"}');
    const out = toStorable(input);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"x":"a\uFFFD"},"list":["\uFFFD",1,null],"ok":"fine"}');
    expect(input.list[0]).toBe('\ud800');
    const clean = { a: 'b' };
    expect(toStorable(clean)).toBe(clean);
  });

  it('jsonDepth is iterative and stops counting past its limit', () => {
    expect(jsonDepth(1)).toBe(0);
    expect(jsonDepth({ a: [1] })).toBe(2);
    expect(jsonDepth(nested(1_000_000))).toBe(MAX_JSON_DEPTH + 1);
  });
});
