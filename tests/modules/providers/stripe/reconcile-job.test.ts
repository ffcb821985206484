import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../../../src/db/embedded.ts';
import { balanceOf } from '../../../helpers/app.ts';
import { sessionObject, stripeEnv, stripeEvent } from '../../../helpers/fake-stripe.ts';
import { buildStripeApp, createPackage, startCheckout } from './stripe-helpers.ts';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

describe('the periodic Stripe reconciliation job', () => {
  it('the server applies a missed event every STRIPE_RECONCILE_INTERVAL_MS, logging the report', async () => {
    const t = await buildStripeApp();
    const pkg = await createPackage(t.app, { credits: 100, price: 1000 });
    const { session } = await startCheckout(t, 'job_user', pkg.id);
    t.fake.events.push(stripeEvent('checkout.session.completed', sessionObject(session)));

    const child = spawn(process.execPath, ['src/server.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        DATABASE_URL: t.databaseUrl,
        PORT: String(await freePort()),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        EXPIRY_SWEEP_INTERVAL_MS: '0',
        STRIPE_RECONCILE_INTERVAL_MS: '300',
        ...stripeEnv(t.fake),
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
      for (let i = 0; i < 100 && (await balanceOf(t.app, 'job_user')).balance === 0; i++) {
        if (child.exitCode !== null) throw new Error(`server exited early:\n${logs}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect((await balanceOf(t.app, 'job_user')).balance).toBe(100);
      for (let i = 0; i < 50 && !/"msg":"stripe reconciliation"/.test(logs); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(logs).toMatch(/"seen":1,"applied":1,"alreadyStored":0/);
      expect(logs).not.toContain('sk_test_fake_key');
    } finally {
      if (child.exitCode === null) {
        const exit = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exit;
      }
    }
  });
});
