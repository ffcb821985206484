import { generateKeyPairSync } from 'node:crypto';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createVerifier } from 'fast-jwt';
import { describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/app.ts';
import { startServer } from '../helpers/server-process.ts';

const SECRET = 'a-production-secret-that-is-long-enough-0123456789';

async function token(env: Record<string, string>, args: string[]) {
  const run = startServer({ NODE_ENV: 'production', ...env }, 'src/cli/token.ts', args);
  const code = await run.exited();
  return { code, stdout: run.output().replace(run.errors(), ''), stderr: run.errors() };
}

describe('npm run token in production', () => {
  it('signs with JWT_SECRET without a DATABASE_URL, and says so on stderr', async () => {
    const { code, stdout, stderr } = await token(
      { JWT_SECRET: SECRET, JWT_ISSUER: 'https://id.example', JWT_AUDIENCE: 'credits' },
      ['--sub', 'ops_1', '--roles', 'ops'],
    );
    expect(code).toBe(0);
    expect(stderr).toMatch(
      /signed with JWT_SECRET \(HS256\) for NODE_ENV=production: sub ops_1, roles \[ops\]/,
    );
    const claims = createVerifier({ key: SECRET, allowedIss: 'https://id.example', allowedAud: 'credits' })(
      stdout.trim(),
    );
    expect(claims).toMatchObject({ sub: 'ops_1', roles: ['ops'], iss: 'https://id.example', aud: 'credits' });
  });

  it('with JWT_PUBLIC_KEY: refuses in one line saying why, signs with the matching --private-key, refuses another key', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-token-'));
    cleanup(() => rm(dir, { recursive: true, force: true }));
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKey = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const keyFile = path.join(dir, 'key.pem');
    const otherFile = path.join(dir, 'other.pem');
    await writeFile(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(otherFile, other.privateKey.export({ type: 'pkcs8', format: 'pem' }));

    const refused = await token({ JWT_PUBLIC_KEY: publicKey }, ['--roles', 'admin']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/JWT_PUBLIC_KEY.*--private-key <file>.*identity provider/);
    expect(refused.stderr).not.toContain('DATABASE_URL');

    const signed = await token({ JWT_PUBLIC_KEY: publicKey }, ['--roles', 'admin', '--private-key', keyFile]);
    expect(signed.code).toBe(0);
    expect(signed.stderr).toMatch(/ES256, matches JWT_PUBLIC_KEY/);
    expect(createVerifier({ key: publicKey })(signed.stdout.trim())).toMatchObject({ roles: ['admin'] });

    const mismatch = await token({ JWT_PUBLIC_KEY: publicKey }, ['--private-key', otherFile]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toMatch(/does not match JWT_PUBLIC_KEY/);
  });

  it('a bad configuration is still named, one line', async () => {
    const { code, stderr } = await token({ JWT_SECRET: 'short' }, []);
    expect(code).toBe(1);
    expect(stderr.trim()).toMatch(/^npm run token: Invalid configuration: JWT_SECRET/);
  });
});
