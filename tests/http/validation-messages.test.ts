import { Type } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { AJV_OPTIONS, toAppError } from '../../src/http/envelope.ts';
import { Scope } from '../../src/http/schemas.ts';

/** The envelope's `errors` for `value` against `schema`, as a route would answer them (no database needed). */
function errorsFor(schema: object, value: unknown, context = 'body') {
  const validate = new Ajv({ ...AJV_OPTIONS, coerceTypes: false }).compile(schema);
  expect(validate(value)).toBe(false);
  const err = toAppError({ validation: validate.errors, validationContext: context });
  expect(err.code).toBe('validation_failed');
  return { en: err.render('en'), ru: err.render('ru') };
}

const Debit = Type.Object(
  {
    amount: Type.Integer({ minimum: 1 }),
    reason: Type.Optional(Type.String({ maxLength: 10 })),
    kind: Type.Optional(Type.Union([Type.Literal('one'), Type.Literal('two')])),
  },
  { additionalProperties: false },
);

describe('validation messages teach (en and ru)', () => {
  it('a union of literals names every allowed value and what was sent, in one line', () => {
    const { en, ru } = errorsFor(Type.Object({ scopes: Type.Array(Scope) }), { scopes: ['credits:spend'] });
    expect(en).toEqual([
      'body.scopes.0 must be one of: checkout:create, credits:debit, balances:read, ledger:read, packages:write (got "credits:spend")',
    ]);
    expect(ru).toEqual([
      'body.scopes.0 должно быть одним из: checkout:create, credits:debit, balances:read, ledger:read, packages:write (получено "credits:spend")',
    ]);
  });

  it('an enum names its values', () => {
    const { en } = errorsFor(
      Type.Object({ expand: Type.Array(Type.String({ enum: ['purchase'] })) }),
      {
        expand: ['purchases'],
      },
      'querystring',
    );
    expect(en).toEqual(['querystring.expand.0 must be one of: purchase (got "purchases")']);
  });

  it('an unknown field is named as unknown, with the likely meant one and the known ones, before what it made missing', () => {
    const { en, ru } = errorsFor(Debit, { amout: 5 });
    expect(en).toEqual([
      "body has an unknown field 'amout' (did you mean 'amount'?); known fields: amount, reason, kind",
      'body.amount is required',
    ]);
    expect(ru[0]).toBe(
      "body содержит неизвестное поле 'amout' (возможно, имелось в виду 'amount'); известные поля: amount, reason, kind",
    );
  });

  it('lists every problem of a body at once', () => {
    const { en } = errorsFor(Debit, { amount: 0, reason: 'x'.repeat(11), kind: 'three', color: 'red' });
    expect(en).toHaveLength(4);
    expect(en[0]).toMatch(/^body has an unknown field 'color'/);
    expect(en.join('\n')).toContain('body.amount must be >= 1');
    expect(en.join('\n')).toContain('body.reason must NOT have more than 10 characters');
    expect(en.join('\n')).toContain('body.kind must be one of: one, two (got "three")');
  });

  it('caps the list for a huge body', () => {
    const { en } = errorsFor(
      Type.Array(Type.Integer()),
      Array.from({ length: 500 }, () => 'x'),
    );
    expect(en).toHaveLength(20);
  });
});
