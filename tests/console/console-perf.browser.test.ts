/**
 * How fast an account with 10,000 ledger entries opens in the console. Measured and printed, not asserted
 * (timings depend on the machine). The entries are written by the ledger's own SQL functions.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tokenFor } from '../helpers/app.ts';
import { describeBrowser, launchChromium, openTab, signIn, startConsoleServer } from './browser.ts';

describeBrowser('an account with 10,000 entries in the console', async () => {
  const server = await startConsoleServer();
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium();
    // 5,000 grants of 2 and 5,000 debits of 1: 10,000 entries, balance 5,000.
    await server.pg.query(
      `select credits_grant('perf_user', 2, 'dev', null, 'perf-grant-' || g, 'seed', '{}'::jsonb, null)
         from generate_series(1, 5000) g`,
    );
    await server.pg.query(
      `select credits_debit('perf_user', 1, 'perf-debit-' || g, 'perf', 'seed', '{}'::jsonb)
         from generate_series(1, 5000) g`,
    );
    const { rows } = await server.pg.query(
      `select count(*)::int as n from ledger_entries where user_id = 'perf_user'`,
    );
    expect(rows[0].n).toBe(10_000);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('opens the account page (figures, first ledger page, holds) and reports the time', async () => {
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await signIn(page, tokenFor('admin_1', ['admin']));
    const ready = async () => {
      await page.getByLabel('Balance', { exact: true }).waitFor();
      await page.getByRole('table', { name: 'Ledger' }).locator('tbody tr').nth(99).waitFor();
      await page.getByRole('table', { name: 'Holds' }).waitFor();
    };
    // A cold load (the page, its script, every API call) through the address bar.
    let started = performance.now();
    await page.goto('/console/accounts/perf_user');
    await ready();
    const cold = performance.now() - started;
    // What the page waited on: each API call's time as the browser saw it (Resource Timing).
    const calls = (await page.evaluate(`performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('/api/v1/'))
      .map((e) => new URL(e.name).pathname.replace('/api/v1/accounts/perf_user', '…') + ' ' + Math.round(e.duration) + ' ms')`)) as string[];
    expect(await page.getByLabel('Balance', { exact: true }).textContent()).toBe('5,000');
    // In-app: from Accounts to the account, as an operator clicks.
    await page.getByRole('link', { name: 'Accounts', exact: true }).click();
    await page.getByRole('table', { name: 'Accounts' }).getByRole('link', { name: 'perf_user' }).waitFor();
    started = performance.now();
    await page.getByRole('table', { name: 'Accounts' }).getByRole('link', { name: 'perf_user' }).click();
    await ready();
    const warm = performance.now() - started;
    console.log(
      `console: an account with 10,000 entries opened in ${cold.toFixed(0)} ms (address bar, cold) and ` +
        `${warm.toFixed(0)} ms (in-app navigation); target < 1000 ms, reported, not asserted. ` +
        `API calls of the cold load: ${calls.join(', ')}`,
    );
    await tab.close();
  });
});
