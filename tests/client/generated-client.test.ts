import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { OPENAPI_PATH } from '../../src/cli/openapi.ts';
import type { App } from '../../src/http/types.ts';
import { buildTestApp, tokenFor } from '../helpers/app.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const GENERATED = here('./generated/openapi.ts');

/** openapi-typescript over the committed document, as a client developer would run it. */
async function generateTypes(): Promise<void> {
  const document = parse(await readFile(OPENAPI_PATH, 'utf8'));
  const ast = await openapiTS(document);
  await mkdir(here('./generated'), { recursive: true });
  await writeFile(GENERATED, `${astToString(ast)}`);
}

/** Type-checks client-usage.ts against the generated types with the project's TypeScript and settings. */
function typeCheck(): string[] {
  const configPath = here('./tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, here('.'));
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    const file = d.file ? `${d.file.fileName.split('/tests/client/')[1]}:${(where?.line ?? 0) + 1}` : '';
    return `${file} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

interface ClientUsage {
  makeClient(baseUrl: string, fetch: (request: Request) => Promise<Response>): unknown;
  walkThrough(
    client: unknown,
    tokens: { admin: string; user: string; userId: string },
  ): Promise<{
    debit: { entryId: string };
    replay: { entryId: string };
  }>;
}

/** openapi-fetch's fetch, answered by app.inject: the whole HTTP surface without a listening socket. */
function injectFetch(app: App) {
  return async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const body = request.body ? await request.text() : undefined;
    const res = await app.inject({
      method: request.method as 'GET',
      url: url.pathname + url.search,
      headers: Object.fromEntries(request.headers),
      ...(body !== undefined ? { payload: body } : {}),
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : String(value));
    }
    return new Response(res.statusCode === 204 ? null : res.rawPayload, { status: res.statusCode, headers });
  };
}

describe('a client generated from openapi.yaml (openapi-typescript + openapi-fetch)', () => {
  it('type-checks and walks from the package list to a replayed debit and the ledger', async () => {
    await generateTypes();
    expect(typeCheck()).toEqual([]);

    // Not a literal specifier: the project's own typecheck must not follow it into the generated types.
    const usagePath = './client-usage.ts';
    const usage = (await import(usagePath)) as ClientUsage;
    const { app } = await buildTestApp({ ALLOW_DEV_PURCHASES: 'true' });
    const client = usage.makeClient('http://credits.test', injectFetch(app));
    const result = await usage.walkThrough(client, {
      admin: tokenFor('admin_1', ['admin']),
      user: tokenFor('client_user'),
      userId: 'client_user',
    });

    expect(result).toMatchObject({
      packagesBefore: 0,
      balanceAfterPurchase: 100,
      debit: { status: 201, balance: 70 },
      replay: { status: 200, replayed: 'true' },
      refusal: {
        status: 402,
        code: 'insufficient_credits',
        message: 'Недостаточно кредитов: доступно 70 (баланс 70, из них 0 в резерве), запрошено 1000',
      },
      ledger: [
        { type: 'debit', amount: -30, purchaseId: null, purchaseStatus: null },
        { type: 'grant', amount: 100, purchaseStatus: 'completed' },
      ],
      purchasePackageName: 'Client pack',
    });
    expect(result.replay.entryId).toBe(result.debit.entryId);
  });
});
