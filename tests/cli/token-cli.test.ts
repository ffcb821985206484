import { createVerifier } from 'fast-jwt';
import { describe, expect, it } from 'vitest';
import { DEV_JWT_SECRET } from '../../src/config.ts';
import { startServer } from '../helpers/server-process.ts';

/** `npm run token -- <args>`, as a user types it. */
async function token(args: string[]) {
  const run = startServer({ NODE_ENV: 'development' }, 'src/cli/token.ts', args);
  const code = await run.exited();
  return { code, stdout: run.output().replace(run.errors(), ''), stderr: run.errors() };
}

describe('npm run token', () => {
  it('--help prints usage and exits 0', async () => {
    const { code, stdout, stderr } = await token(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: npm run token -- /);
    expect(stdout).toContain('--ttl');
    expect(stderr).toBe('');
  });

  it.each([['--ttl', 'abc'], ['--ttl', '-5'], ['--ttl=-5'], ['--ttl', '0'], ['--bogus']])(
    '%s %s is a one-line usage error with exit code 2',
    async (...args) => {
      const { code, stdout, stderr } = await token(args);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toMatch(/^npm run token: .*\(--help for usage\)/);
      if (args.join(' ').includes('ttl')) expect(stderr).toContain('--ttl must be a positive whole number');
    },
  );

  it('signs a development token for --sub with --roles and --ttl', async () => {
    const { code, stdout } = await token(['--sub', 'cli_user', '--roles', 'admin', '--ttl', '60']);
    expect(code).toBe(0);
    const claims = createVerifier({ key: DEV_JWT_SECRET })(stdout.trim());
    expect(claims).toMatchObject({ sub: 'cli_user', roles: ['admin'] });
    expect(claims.exp - claims.iat).toBe(60);
  });
});
