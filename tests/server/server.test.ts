import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded.ts';
import { createTestDatabase, tokenFor } from '../helpers/app.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function exited(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => reject(new Error('the server did not exit in time')), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe('node src/server.ts', () => {
  it('listens on a real Postgres, logs without credentials, and stops on SIGTERM', async () => {
    const databaseUrl = await createTestDatabase();
    const port = await freePort();
    const child = spawn(process.execPath, ['src/server.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        DATABASE_URL: databaseUrl,
        PORT: String(port),
        // No HOST: outside production the default is loopback.
        LOG_LEVEL: 'info',
        EXPIRY_SWEEP_INTERVAL_MS: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    child.stdout?.on('data', (d) => {
      logs += d;
    });
    child.stderr?.on('data', (d) => {
      logs += d;
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      let ready: Response | undefined;
      for (let i = 0; i < 100 && !ready; i++) {
        if (child.exitCode !== null) throw new Error(`server exited early:\n${logs}`);
        ready = await fetch(`${base}/readyz`).catch(() => undefined);
        if (!ready) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ready?.status).toBe(200);

      const token = tokenFor('server_user');
      const res = await fetch(`${base}/api/v1/credits/balance`, {
        headers: {
          authorization: `Bearer ${token}`,
          cookie: 'session=cookie-secret-value',
          'x-request-id': 'req-srv-1',
        },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe('req-srv-1');
      const apiKey = 'ck_this-key-must-never-be-logged-0123456789';
      const denied = await fetch(`${base}/api/v1/accounts/x/balance`, { headers: { 'x-api-key': apiKey } });
      expect(denied.status).toBe(401);

      // The start log says where the docs are and whether the dev purchase route is on.
      expect(logs).toContain(`API docs: http://127.0.0.1:${port}/docs`);
      expect(logs).toMatch(/dev purchase route: off/);

      // Request logs carry the request id and never the credentials.
      expect(logs).toContain('req-srv-1');
      expect(logs).not.toContain(token);
      expect(logs).not.toContain(token.split('.')[2] as string);
      expect(logs).not.toContain(apiKey);
      expect(logs).not.toContain('cookie-secret-value');

      child.kill('SIGTERM');
      expect(await exited(child, 15_000)).toBe(0);
      expect(logs).toMatch(/shutting down/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
