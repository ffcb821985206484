/**
 * The console's screens over CONTRACT section 15 (balance history, lots, ledger filters and CSV, the credits
 * report). Each test runs when the service documents the route it needs (/docs/json), so they run as soon
 * as the reports change is in; until then the last test shows those screens saying so in words.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { asAdmin, bearer, tokenFor } from '../helpers/app.ts';
import { unique } from '../helpers/revenuecat.ts';
import {
  describeBrowser,
  launchChromium,
  openTab,
  servedApi,
  signIn,
  startConsoleServer,
  POLL,
} from './browser.ts';

const ADMIN = tokenFor('admin_1', ['admin']);
const CSV_HEADER =
  'id,createdAt,userId,type,amount,balanceAfter,source,purchaseId,holdId,reversesEntryId,reason,idempotencyKey,metadata';

/** How many pixels of the chart's canvas are painted (0: nothing drawn). */
const painted = (label: string) => `(() => {
  const canvas = document.querySelector('[role="img"][aria-label^="${label}"] canvas');
  if (!canvas) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return n;
})()`;

describeBrowser('the console over reports and exports (CONTRACT section 15)', async () => {
  const server = await startConsoleServer({ ALLOW_DEV_PURCHASES: 'true' });
  const api = await servedApi(server.base);
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium();
    const { app } = server;
    // erin buys a 100-credit package for $4.99 (the dev route, with its price), then spends 30.
    const pkg = await app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages',
      headers: asAdmin(),
      payload: { name: 'Hundred', credits: 100, price: 499, currency: 'usd' },
    });
    const bought = await app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages/purchase',
      headers: bearer(tokenFor('erin')),
      payload: { packageId: pkg.json().data.id },
    });
    expect(bought.statusCode).toBe(201);
    const spent = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/erin/debits',
      headers: { ...asAdmin(), 'idempotency-key': unique('d') },
      payload: { amount: 30, reason: 'exports' },
    });
    expect(spent.statusCode).toBe(201);
  });

  afterAll(async () => {
    await browser?.close();
  });

  it.skipIf(!api.has('/api/v1/accounts/{userId}/balance-history'))(
    'draws the balance over time, by day, hour or week',
    async () => {
      const tab = await openTab(browser, server.base);
      const { page } = tab;
      await signIn(page, ADMIN, '/console/accounts/erin');
      const chart = page.getByRole('img', { name: /^Balance over time, by day/ });
      await chart.waitFor();
      expect(await chart.getAttribute('aria-label')).toMatch(/now 70$/);
      await expect.poll(() => page.evaluate(painted('Balance over time')), POLL).toBeGreaterThan(200);
      await page.getByRole('button', { name: 'Hours' }).click();
      await page.getByRole('img', { name: /^Balance over time, by hour/ }).waitFor();
      await page.getByRole('button', { name: 'Weeks' }).click();
      await page.getByRole('img', { name: /^Balance over time, by week/ }).waitFor();
      await expect.poll(() => page.evaluate(painted('Balance over time')), POLL).toBeGreaterThan(200);
      await tab.close();
    },
  );

  it.skipIf(!api.has('/api/v1/accounts/{userId}/lots'))(
    'shows the lots: what remains of each grant, its price and expiry',
    async () => {
      const tab = await openTab(browser, server.base);
      const { page } = tab;
      await signIn(page, ADMIN, '/console/accounts/erin');
      const lots = page.getByRole('table', { name: 'Lots' });
      const row = lots.locator('tbody tr').first();
      await row.waitFor();
      const cells = await row.locator('td').allTextContents();
      expect(cells).toContain('70 / 100');
      expect(cells).toContain('$4.99');
      expect(cells).toContain('never');
      await tab.close();
    },
  );

  it.skipIf(!api.takes('/api/v1/accounts/{userId}/ledger', 'type'))(
    'filters the ledger by type and exports it as CSV',
    async () => {
      const tab = await openTab(browser, server.base);
      const { page } = tab;
      await signIn(page, ADMIN, '/console/accounts/erin');
      const ledger = page.getByRole('table', { name: 'Ledger' });
      await ledger.locator('tbody tr').nth(1).waitFor();
      await page.getByRole('checkbox', { name: 'debit', exact: true }).check();
      await page.getByRole('form', { name: 'Ledger filters' }).getByRole('button', { name: 'Apply' }).click();
      await expect.poll(() => ledger.locator('tbody tr').count(), POLL).toBe(1);
      expect((await ledger.locator('tbody tr td').allTextContents()).slice(1, 3)).toEqual([
        'debit',
        '\u221230',
      ]);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Export CSV' }).click(),
      ]);
      const text = await new Response(
        (await download.createReadStream()) as unknown as ReadableStream,
      ).text();
      const lines = text.trim().split(/\r?\n/);
      expect(lines[0]).toBe(CSV_HEADER);
      expect(lines).toHaveLength(2);
      expect(lines[1]).toContain(',debit,-30,70,');
      const csvRequest = tab.apiRequests.find((r) => r.headers.accept === 'text/csv');
      expect(csvRequest?.url).toContain('type=debit');
      await tab.close();
    },
  );

  it.skipIf(!api.has('/api/v1/reports/credits'))(
    'shows the credits report as a table and a chart, exports it, and the overview its outstanding credits',
    async () => {
      const tab = await openTab(browser, server.base);
      const { page } = tab;
      await signIn(page, ADMIN);
      await expect.poll(() => page.getByLabel('Credits outstanding').textContent(), POLL).toBe('70');
      await page.getByRole('img', { name: /^Credits sold and spent/ }).waitFor();
      await page.getByRole('link', { name: 'Reports', exact: true }).click();
      const table = page.getByRole('table', { name: 'Credits report' });
      const usd = table.locator('tbody tr', { hasText: 'usd' }).last();
      await usd.waitFor();
      await page.getByRole('img', { name: /^Credits report/ }).waitFor();
      await expect.poll(() => page.evaluate(painted('Credits report')), POLL).toBeGreaterThan(200);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Export CSV' }).click(),
      ]);
      expect(download.suggestedFilename()).toMatch(/\.csv$/);
      await tab.close();
    },
  );

  it.skipIf(api.has('/api/v1/accounts/{userId}/lots') && api.has('/api/v1/reports/credits'))(
    'before section 15 is served, its screens say so in words instead of going blank',
    async () => {
      const tab = await openTab(browser, server.base);
      const { page } = tab;
      await signIn(page, ADMIN, '/console/accounts/erin');
      await page.getByRole('table', { name: 'Ledger' }).locator('tbody tr').first().waitFor();
      await expect
        .poll(() => page.getByRole('alert').allTextContents())
        .toContainEqual(expect.stringContaining('This service does not offer this yet (404).'));
      await page.getByRole('link', { name: 'Reports', exact: true }).click();
      await expect.poll(() => page.getByRole('alert').first().textContent(), POLL).toContain('(404)');
      await tab.close();
    },
  );
});
