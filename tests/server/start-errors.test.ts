import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { describeStartError } from '../../src/start-errors.ts';

const config = loadConfig({ PORT: '4000' });
const url = 'postgres://credits:s3cret-pass@db.internal:6543/credits';
const failure = (code: string, message = 'raw driver message') => Object.assign(new Error(message), { code });

describe('describeStartError: one line a person can act on, never a password', () => {
  it.each([
    [failure('EADDRINUSE'), /port 4000 is already in use on 127\.0\.0\.1.*set PORT/],
    [failure('EACCES'), /no permission to listen on 127\.0\.0\.1:4000/],
    [
      failure('3D000', 'database "credits" does not exist'),
      /database "credits" does not exist on db\.internal:6543; create it with `createdb -h db\.internal -p 6543 -U credits credits`/,
    ],
    [
      failure('28P01', 'password authentication failed for user "credits"'),
      /db\.internal:6543 refused the login/,
    ],
    [failure('ECONNREFUSED'), /cannot reach Postgres at db\.internal:6543 \(ECONNREFUSED\)/],
    [new Error('timeout exceeded when trying to connect'), /db\.internal:6543 did not answer/],
    [new ConfigError('PORT', 'must be an integer'), /^Invalid configuration: PORT/],
    [new Error('first line\n    at stack (x.ts:1:1)'), /^first line$/],
  ])('%s', (err, expected) => {
    const line = describeStartError(err, config, url);
    expect(line).toMatch(expected);
    expect(line).not.toContain('\n');
    expect(line).not.toContain('s3cret-pass');
  });

  it('says something even for a rejection with nothing in it', () => {
    expect(describeStartError(undefined, config, url)).toBe(
      'a step of the start failed without giving a reason',
    );
  });
});
