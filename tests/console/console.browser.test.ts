import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { asAdmin, createApiKey, grant, tokenFor } from '../helpers/app.ts';
import { deliver, purchaseEvent, RC_AUTH, unique } from '../helpers/revenuecat.ts';
import {
  type ConsoleServer,
  describeBrowser,
  type ServedApi,
  servedApi,
  launchChromium,
  openTab,
  SCREENSHOTS,
  screenshot,
  seriousViolations,
  signIn,
  startConsoleServer,
  POLL,
} from './browser.ts';

const ADMIN = tokenFor('admin_1', ['admin']);
const OPS = tokenFor('ops_1', ['ops']);
const HTML_REASON = '<img src=x onerror="window.__xss=1"><b>bold</b> & more';

let server: ConsoleServer;
let browser: Browser;
let api: ServedApi;
let parkedEventId = '';
let packageId = '';

async function debit(userId: string, amount: number, reason: string) {
  const res = await server.app.inject({
    method: 'POST',
    url: `/api/v1/accounts/${userId}/debits`,
    headers: { ...asAdmin(), 'idempotency-key': unique('seed') },
    payload: { amount, reason },
  });
  if (res.statusCode !== 201) throw new Error(`debit failed: ${res.body}`);
  return res.json().data.entry as { id: string };
}

describeBrowser('the operations console in Chromium (CONTRACT section 14)', () => {
  beforeAll(async () => {
    server = await startConsoleServer({ REVENUECAT_WEBHOOK_AUTH: RC_AUTH, ALLOW_DEV_PURCHASES: 'true' });
    browser = await launchChromium();
    api = await servedApi(server.base);
    console.log(`console screenshots: ${SCREENSHOTS}`);
    const { app } = server;
    // alice: 100 + 50 (expiring in 10 days) − 40, and a hold of 5.
    await grant(app, 'alice', 100);
    await grant(app, 'alice', 50, { expiresAt: new Date(Date.now() + 10 * 86_400_000) });
    await debit('alice', 40, 'Tuesday export');
    const hold = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/alice/holds',
      headers: { ...asAdmin(), 'idempotency-key': unique('hold') },
      payload: { amount: 5, reason: 'generation in progress' },
    });
    expect(hold.statusCode).toBe(201);
    // bob: a debit an operator gives back. mallory: a reason holding HTML.
    await grant(app, 'bob', 100);
    await debit('bob', 40, 'lost on Tuesday');
    await grant(app, 'mallory', 10);
    await debit('mallory', 1, HTML_REASON);
    // A RevenueCat purchase of a product no package sells yet: parked, replayable.
    const body = purchaseEvent(unique('prod'), 'carol', unique('tx'));
    expect((await deliver(app, body)).json().data.outcome).toBe('parked');
    parkedEventId = body.event.id as string;
    const pkg = await app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages',
      headers: asAdmin(),
      payload: { name: 'Starter', credits: 100, price: 499, currency: 'usd' },
    });
    packageId = pkg.json().data.id;
    await createApiKey(app, ['credits:debit'], 'orders-service');
    const endpoint = await app.inject({
      method: 'POST',
      url: '/api/v1/webhook-endpoints',
      headers: asAdmin(),
      payload: { url: 'http://127.0.0.1:9/hooks', events: ['*'] },
    });
    expect(endpoint.statusCode).toBe(201);
    await grant(app, 'dave', 7); // after the endpoint exists: a delivery waits for it
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('signs in with a token kept in sessionStorage only, and signs out', async () => {
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await page.goto('/console');
    expect(new URL(page.url()).pathname).toBe('/console/');
    await screenshot(page, '01-sign-in');
    await signIn(page, ADMIN);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), POLL).toBe('Overview');
    expect(await page.evaluate('sessionStorage.getItem("credits-console.token")')).toBe(ADMIN);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect(await tab.context.cookies()).toEqual([]);
    expect(page.url()).not.toContain(ADMIN);
    // A reload keeps the session for the tab; a deep link works.
    await page.goto('/console/accounts/alice');
    await page.getByLabel('Balance', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').waitFor();
    expect(await page.evaluate('sessionStorage.getItem("credits-console.token")')).toBeNull();
    await tab.close();
  });

  it('says in words that a bad token was refused, and stays on the sign-in page', async () => {
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await page.goto('/console/');
    await page.getByLabel('Token').fill('not-a-real-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.textContent(), POLL).toMatch(/^This token was refused: .*invalid/);
    expect(await page.getByRole('navigation').count()).toBe(0);
    // A user's own JWT (no operator role) is refused in words too.
    await page.getByLabel('Token').fill(tokenFor('alice'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => alert.textContent(), POLL).toMatch(/without the admin or ops role/);
    await tab.close();
  });

  it('shows an account with the right figures, what expires, the ledger with balance after, purchases and holds', async () => {
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await signIn(page, ADMIN);
    await page.getByRole('link', { name: 'Accounts', exact: true }).click();
    // The prefix search is section 15's: used when this service has it.
    if (api.takes('/api/v1/accounts', 'prefix')) {
      await page.getByLabel('User id').fill('ali');
      await page.getByRole('button', { name: 'Search' }).click();
    }
    await page.getByRole('table', { name: 'Accounts' }).getByRole('link', { name: 'alice' }).click();
    await expect.poll(() => page.getByLabel('Balance', { exact: true }).textContent(), POLL).toBe('110');
    expect(await page.getByLabel('Available', { exact: true }).textContent()).toBe('105');
    expect(await page.getByLabel('Held', { exact: true }).textContent()).toBe('5');
    // The debit took the credits that expire soonest first: 10 of the 50 are left to expire.
    expect(await page.getByText(/^10 credits expire on \d{4}-\d\d-\d\d \d\d:\d\d UTC$/).count()).toBe(1);
    const ledger = page.getByRole('table', { name: 'Ledger' });
    const headers = await ledger.getByRole('columnheader').allTextContents();
    expect(headers).toContain('Balance after');
    const rows = ledger.locator('tbody tr');
    expect(await rows.count()).toBe(3);
    // Newest first: the debit (−40, balance after 110), then the grants (150, 100).
    const cells = async (i: number) => rows.nth(i).locator('td').allTextContents();
    expect((await cells(0)).slice(1, 4)).toEqual(['debit', '\u221240', '110']);
    expect((await cells(0))[5]).toBe('Tuesday export');
    expect((await cells(1)).slice(1, 4)).toEqual(['grant', '+50', '150']);
    expect((await cells(2)).slice(1, 4)).toEqual(['grant', '+100', '100']);
    const holds = page.getByRole('table', { name: 'Holds' });
    expect(await holds.locator('tbody tr').count()).toBe(1);
    expect(await holds.getByRole('button', { name: 'Release' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Sync RevenueCat' }).count()).toBe(1);
    await page.getByRole('table', { name: 'Purchases' }).waitFor();
    await tab.close();
  });

  it('reverses a debit from the console: confirmation, an Idempotency-Key, and the balance changes', async () => {
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await signIn(page, ADMIN, '/console/accounts/bob');
    await expect.poll(() => page.getByLabel('Balance', { exact: true }).textContent(), POLL).toBe('60');
    const row = page
      .getByRole('table', { name: 'Ledger' })
      .locator('tbody tr', { hasText: 'lost on Tuesday' });
    await row.getByRole('button', { name: 'Reverse' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reason').fill('support ticket 1234');
    await dialog.getByRole('button', { name: 'Reverse' }).click();
    await expect.poll(() => page.getByLabel('Balance', { exact: true }).textContent(), POLL).toBe('100');
    expect(await page.getByRole('dialog').count()).toBe(0);
    const reversal = tab.apiRequests.find((r) => r.method === 'POST' && r.url.includes('/reversals'));
    expect(reversal?.headers['idempotency-key']).toMatch(/^console:reverse:/);
    const ledger = page.getByRole('table', { name: 'Ledger' });
    await expect
      .poll(async () =>
        (await ledger.locator('tbody tr').first().locator('td').allTextContents()).slice(1, 4),
      )
      .toEqual(['debit_reversal', '+40', '100']);
    // And the service agrees.
    const balance = await server.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/bob/balance',
      headers: asAdmin(),
    });
    expect(balance.json().data.balance).toBe(100);
    await tab.close();
  });

  it('replays a parked provider event after confirmation and says the new outcome', async () => {
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await signIn(page, ADMIN);
    await page.getByRole('link', { name: 'Provider events', exact: true }).click();
    await page.getByLabel('Status').selectOption('parked');
    await page.getByRole('button', { name: 'Apply' }).click();
    const table = page.getByRole('table', { name: 'Provider events' });
    const row = table.locator('tbody tr', { hasText: 'carol' });
    await row.waitFor();
    await row.getByRole('link', { name: /^View/ }).click();
    await page.getByRole('heading', { name: `Provider event ${parkedEventId}` }).waitFor();
    expect(await page.locator('pre.payload').textContent()).toContain(parkedEventId);
    await page.getByRole('button', { name: 'Replay' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Replay' }).click();
    await expect
      .poll(() => page.getByRole('status').first().textContent())
      .toBe('Replayed: the outcome is now parked.');
    const replays = tab.apiRequests.filter((r) => r.method === 'POST' && r.url.endsWith('/replay'));
    expect(replays).toHaveLength(1);
    await tab.close();
  });

  it('ops read everything but see no admin action, and a 403 is said in words', async () => {
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await signIn(page, OPS, '/console/accounts/alice');
    await expect.poll(() => page.getByLabel('Balance', { exact: true }).textContent(), POLL).toBe('110');
    await page.getByRole('table', { name: 'Ledger' }).locator('tbody tr').first().waitFor();
    await page.getByRole('table', { name: 'Holds' }).locator('tbody tr').first().waitFor();
    expect(await page.getByRole('button', { name: 'Reverse' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Release' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Sync RevenueCat' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Provider events', exact: true }).click();
    await page.getByRole('table', { name: 'Provider events' }).locator('tbody tr').first().waitFor();
    expect(await page.getByRole('button', { name: 'Replay' }).count()).toBe(0);
    await page.getByRole('link', { name: 'API keys' }).click();
    await expect
      .poll(() => page.getByRole('alert').textContent())
      .toContain('Your credential may not do this (403).');
    expect(await page.getByRole('button', { name: 'Create API key' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Packages' }).click();
    await page.getByRole('table', { name: 'Packages' }).locator('tbody tr').first().waitFor();
    expect(await page.getByRole('button', { name: 'Create package' }).count()).toBe(0);
    await tab.close();
  });

  it('an API key with ledger:read sees ledgers, and what it may not read is said in words', async () => {
    const key = await createApiKey(server.app, ['ledger:read'], 'ledger reader');
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await signIn(page, key, '/console/accounts/alice');
    const ledger = page.getByRole('table', { name: 'Ledger' });
    await ledger.locator('tbody tr').first().waitFor();
    expect(await ledger.locator('tbody tr').count()).toBe(3);
    // The balance needs balances:read.
    await expect.poll(() => page.getByRole('alert').first().textContent(), POLL).toContain('(403)');
    expect(await page.getByRole('button', { name: 'Reverse' }).count()).toBe(0);
    await tab.close();
  });

  it('an API key with credits:debit may reverse; once revoked, the console says so on the sign-in page', async () => {
    const key = await createApiKey(server.app, ['ledger:read', 'credits:debit'], 'support tool');
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await signIn(page, key, '/console/accounts/alice');
    const ledger = page.getByRole('table', { name: 'Ledger' });
    await ledger.getByRole('button', { name: 'Reverse' }).waitFor();
    expect(await page.getByRole('button', { name: 'Sync RevenueCat' }).count()).toBe(0);
    // No debit was written by finding out the key's scopes.
    const entries = await server.pg.query(
      `select count(*)::int as n from ledger_entries where user_id like 'console%'`,
    );
    expect(entries.rows[0].n).toBe(0);
    const keys = await server.app.inject({
      method: 'GET',
      url: '/api/v1/api-keys?limit=100',
      headers: asAdmin(),
    });
    const id = keys.json().data.items.find((k: { name: string }) => k.name === 'support tool').id;
    await server.app.inject({ method: 'DELETE', url: `/api/v1/api-keys/${id}`, headers: asAdmin() });
    await page.getByRole('link', { name: 'Events', exact: true }).click();
    await page.getByLabel('Token').waitFor();
    expect(await page.getByRole('status').textContent()).toBe(
      'Your session ended: the service refused the token. Sign in again.',
    );
    expect(await page.evaluate('sessionStorage.getItem("credits-console.token")')).toBeNull();
    await tab.close();
  });

  it('renders a reason holding HTML as text', async () => {
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    await signIn(page, ADMIN, '/console/accounts/mallory');
    const ledger = page.getByRole('table', { name: 'Ledger' });
    const cell = ledger.getByRole('cell', { name: HTML_REASON, exact: true });
    await cell.waitFor();
    expect(await cell.textContent()).toBe(HTML_REASON);
    expect(await page.locator('main img, main b').count()).toBe(0);
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    await tab.close();
  });

  it('speaks Russian when the browser does, with a switch, and asks the API for Russian errors', async () => {
    const tab = await openTab(browser, server.base, { locale: 'ru-RU' });
    const { page } = tab;
    await page.goto('/console/');
    await page.getByLabel('Токен').fill(OPS);
    await page.getByRole('button', { name: 'Войти' }).click();
    await page.getByRole('link', { name: 'Обзор' }).waitFor();
    expect(await page.evaluate('document.documentElement.lang')).toBe('ru');
    await page.getByRole('link', { name: 'API-ключи' }).click();
    const alert = page.getByRole('alert');
    await expect
      .poll(() => alert.textContent())
      .toContain('Ваши учётные данные не позволяют это сделать (403).');
    // The API's own message, in Russian because the console asked for it.
    expect(await alert.textContent()).toMatch(/Нет доступа|нужн|прав/i);
    const apiCalls = tab.apiRequests.filter((r) => r.url.includes('/api/v1/api-keys'));
    expect(apiCalls.length).toBeGreaterThan(0);
    expect(apiCalls.every((r) => r.headers['accept-language'] === 'ru')).toBe(true);
    await page.getByLabel('Язык').selectOption('en');
    await page.getByRole('link', { name: 'Overview' }).waitFor();
    await tab.close();
  });

  it('every screen: no serious or critical accessibility violation (axe-core), and a screenshot', async () => {
    const tab = await openTab(browser, server.base);
    const { page } = tab;
    const found: Record<string, unknown> = {};
    const check = async (name: string) => {
      const violations = await seriousViolations(page);
      if (violations.length > 0) found[name] = violations;
      await screenshot(page, name);
    };
    await page.goto('/console/');
    await page.getByLabel('Token').waitFor();
    await check('01-sign-in');
    await signIn(page, ADMIN);
    const screens: [string, string, () => Promise<unknown>][] = [
      ['02-overview', 'Overview', () => page.getByLabel('Provider events parked').waitFor()],
      ['03-accounts', 'Accounts', () => page.getByRole('table', { name: 'Accounts' }).waitFor()],
      [
        '05-provider-events',
        'Provider events',
        () => page.getByRole('table', { name: 'Provider events' }).waitFor(),
      ],
      ['07-packages', 'Packages', () => page.getByRole('table', { name: 'Packages' }).waitFor()],
      ['08-api-keys', 'API keys', () => page.getByRole('table', { name: 'API keys' }).waitFor()],
      ['09-webhooks', 'Webhooks', () => page.getByRole('table', { name: 'Webhook endpoints' }).waitFor()],
      ['10-events', 'Events', () => page.getByRole('table', { name: 'Events' }).waitFor()],
      ['11-reports', 'Reports', () => page.getByRole('heading', { name: 'Reports' }).waitFor()],
    ];
    for (const [name, link, ready] of screens) {
      await page.getByRole('link', { name: link, exact: true }).click();
      await ready();
      await page.waitForLoadState('networkidle');
      await check(name);
    }
    await page.goto('/console/accounts/alice');
    await page.getByRole('table', { name: 'Ledger' }).locator('tbody tr').first().waitFor();
    await page.waitForLoadState('networkidle');
    await check('04-account');
    await page
      .getByRole('table', { name: 'Ledger' })
      .locator('tbody tr')
      .first()
      .getByRole('button', { name: 'Reverse' })
      .click();
    await check('04b-account-confirm-reverse');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await page.goto('/console/provider-events');
    await page
      .getByRole('table', { name: 'Provider events' })
      .getByRole('link', { name: /^View/ })
      .first()
      .click();
    await page.getByRole('heading', { name: /^Provider event / }).waitFor();
    await check('06-provider-event');
    await page.goto('/console/webhooks');
    await page
      .getByRole('button', { name: /^Deliveries/ })
      .first()
      .click();
    await page.getByRole('table', { name: 'Deliveries' }).locator('tbody tr').first().waitFor();
    await check('09b-webhook-deliveries');
    await page.goto('/console/packages');
    await page.getByRole('table', { name: 'Packages' }).getByRole('button', { name: 'Edit' }).first().click();
    await page.getByRole('form', { name: /^Edit package/ }).waitFor();
    await check('07b-package-edit');
    expect(found).toEqual({});
    expect(packageId).not.toBe('');
    await tab.close();
  });
});
