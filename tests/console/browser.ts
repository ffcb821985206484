/**
 * Browser tests of the operations console: Debian's Chromium driven by playwright-core (pinned to the version
 * that matches it; never a browser download), against the real app listening on an ephemeral port with its
 * own test database. Without Chromium the tests are skipped with a message, unless REQUIRE_BROWSER=1 (CI),
 * where a missing browser fails the run.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const browserPresent = existsSync(CHROMIUM);

if (!browserPresent) {
  const how = `Install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH.`;
  if (process.env.REQUIRE_BROWSER === '1') {
    throw new Error(`REQUIRE_BROWSER=1 but there is no Chromium at ${CHROMIUM}. ${how}`);
  }
  console.warn(`The console's browser tests are SKIPPED: no Chromium at ${CHROMIUM}. ${how}`);
}

/**
 * `describe` when Chromium is here; otherwise one skipped test that says why, and `body` never runs (it starts
 * a server).
 */
export function describeBrowser(name: string, body: () => void | Promise<void>) {
  // A browser test walks several screens: more time than the suite's 30 s default on a busy machine.
  if (browserPresent) return describe(name, { timeout: 120_000 }, body);
  return describe(name, () => {
    it.skip(`skipped: no Chromium at ${CHROMIUM}`, () => {});
  });
}

/** Where screenshots go: CONSOLE_SCREENSHOTS, else a folder under the OS temp dir named for this run. */
export const SCREENSHOTS =
  process.env.CONSOLE_SCREENSHOTS ||
  path.join(
    os.tmpdir(),
    `credits-console-screenshots-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}`,
  );

/** How long a test waits for the page to show something: generous, as the machine may be busy. */
export const POLL = { timeout: 15_000 };

export interface ConsoleServer extends TestApp {
  /** http://127.0.0.1:port */
  base: string;
}

/** The real app on its own database, listening on an ephemeral loopback port; closed after the file. */
export async function startConsoleServer(env: Record<string, string> = {}): Promise<ConsoleServer> {
  const t = await buildTestApp(env);
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = t.app.server.address() as AddressInfo;
  return { ...t, base: `http://127.0.0.1:${port}` };
}

export interface ServedApi {
  /** Whether the running service documents `GET path` (section 15 lands in another change). */
  has(path: string): boolean;
  /** Whether `GET path` takes the query parameter `name`. */
  takes(path: string, name: string): boolean;
}

/** What the running service documents at /docs/json: the tests of section 15's screens run once it is there. */
export async function servedApi(base: string): Promise<ServedApi> {
  type Parameter = { in?: string; name?: string; $ref?: string };
  type Operation = { parameters?: Parameter[] };
  const doc = (await (await fetch(`${base}/docs/json`)).json()) as {
    paths: Record<string, { get?: Operation }>;
    components?: { parameters?: Record<string, Parameter> };
  };
  // Shared parameters are references to components.parameters.
  const resolve = (p: Parameter) =>
    p.$ref ? (doc.components?.parameters?.[p.$ref.split('/').pop() ?? ''] ?? p) : p;
  return {
    has: (path) => doc.paths[path]?.get !== undefined,
    takes: (path, name) =>
      (doc.paths[path]?.get?.parameters ?? []).map(resolve).some((p) => p.in === 'query' && p.name === name),
  };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface ConsoleTab {
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors, and console errors other than an HTTP status the test provoked (CSP refusals too). */
  problems: string[];
  /** Requests that left the service's origin (none may). */
  foreign: string[];
  /** Every request the page made to the API: method, URL and headers. */
  apiRequests: { method: string; url: string; headers: Record<string, string> }[];
  /** Closes the tab, then checks that nothing went wrong in it. */
  close(): Promise<void>;
}

/** A fresh browser context (its own sessionStorage) on the console, watched for errors and foreign requests. */
export async function openTab(
  browser: Browser,
  base: string,
  options: { locale?: string } = {},
): Promise<ConsoleTab> {
  const context = await browser.newContext({
    baseURL: base,
    acceptDownloads: true,
    locale: options.locale ?? 'en-US',
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  const problems: string[] = [];
  const foreign: string[] = [];
  const apiRequests: ConsoleTab['apiRequests'] = [];
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  page.on('console', (message) => {
    // The browser logs every 4xx a fetch receives; the tests provoke some (403, 404) on purpose.
    if (
      message.type() === 'error' &&
      !/Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())
    ) {
      problems.push(`console: ${message.text()}`);
    }
  });
  context.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(`${base}/`) && !url.startsWith('blob:') && !url.startsWith('data:'))
      foreign.push(url);
    if (url.startsWith(`${base}/api/`)) {
      apiRequests.push({ method: request.method(), url, headers: request.headers() });
    }
  });
  return {
    context,
    page,
    problems,
    foreign,
    apiRequests,
    async close() {
      await context.close();
      expect(problems, 'no uncaught errors or CSP refusals in the page').toEqual([]);
      expect(foreign, 'every request stays on the service').toEqual([]);
    },
  };
}

/** Signs in on the sign-in page with `token` and waits for the navigation to appear. */
export async function signIn(page: Page, token: string, path = '/console/') {
  await page.goto(path);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation').waitFor();
}

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * axe-core run in the page (evaluated through the DevTools protocol, so the page's CSP still forbids inline
 * scripts for everything else); the serious and critical violations.
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  if (!(await page.evaluate('typeof axe !== "undefined"'))) await page.evaluate(AXE_SOURCE);
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) =>
    r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '')) })))`)) as AxeViolation[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A full-page screenshot of one screen, into SCREENSHOTS. */
export async function screenshot(page: Page, name: string) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
