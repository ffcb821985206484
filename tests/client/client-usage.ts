/**
 * What a client developer writes with openapi-fetch and types generated from the committed openapi.yaml by
 * openapi-typescript. generated-client.test.ts generates the types, type-checks this file, then runs it.
 * It is outside the project's own typecheck (the generated types exist only while that test runs): a change
 * to the document that breaks generated clients fails that test.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { operations, paths } from './generated/openapi.ts';

/** The debit request body as a generator names it: by operationId. */
type DebitBody = NonNullable<operations['createDebit']['requestBody']>['content']['application/json'];

/**
 * A typed client; `fetch` lets the test answer through app.inject instead of a socket. `'application/json'`:
 * the ledger lists and the credits report also document a text/csv answer (CSV exports), and a JSON client's
 * `data` is typed from the JSON one only.
 */
export function makeClient(
  baseUrl: string,
  fetch?: (request: Request) => Promise<Response>,
): Client<paths, 'application/json'> {
  return createClient<paths, 'application/json'>({ baseUrl, ...(fetch ? { fetch } : {}) });
}

export interface Tokens {
  admin: string;
  user: string;
  userId: string;
}

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

export async function walkThrough(client: Client<paths, 'application/json'>, tokens: Tokens) {
  // Anyone lists packages; the server fills `limit`.
  const listed = await client.GET('/api/v1/credit-packages');
  if (!listed.data) throw new Error(`list packages: ${listed.response.status}`);
  const before: number = listed.data.data.items.length;

  const created = await client.POST('/api/v1/credit-packages', {
    headers: auth(tokens.admin),
    body: { name: 'Client pack', credits: 100, price: 499, currency: 'usd' },
  });
  if (!created.data) throw new Error(`create package: ${created.error?.code}`);
  const pkg = created.data.data;

  // Backend services spend credits with an API key holding credits:debit.
  const key = await client.POST('/api/v1/api-keys', {
    headers: auth(tokens.admin),
    body: { name: 'orders', scopes: ['credits:debit'] },
  });
  if (!key.data) throw new Error(`create key: ${key.error?.code}`);
  const apiKey: string = key.data.data.key;

  const bought = await client.POST('/api/v1/credit-packages/purchase', {
    headers: auth(tokens.user),
    body: { packageId: pkg.id },
  });
  if (!bought.data) throw new Error(`dev purchase: ${bought.error?.code}`);
  const purchaseId: string = bought.data.data.purchase.id;

  const balance = await client.GET('/api/v1/credits/balance', { headers: auth(tokens.user) });
  if (!balance.data) throw new Error(`balance: ${balance.error?.code}`);

  const body: DebitBody = { amount: 30, reason: 'Image generation', metadata: { jobId: 'job_1' } };
  const debitOnce = () =>
    client.POST('/api/v1/accounts/{userId}/debits', {
      params: { path: { userId: tokens.userId }, header: { 'idempotency-key': 'job_1' } },
      headers: { 'x-api-key': apiKey },
      body,
    });
  const debit = await debitOnce();
  if (!debit.data) throw new Error(`debit: ${debit.error?.code}`);
  const replay = await debitOnce();
  if (!replay.data) throw new Error(`replay: ${replay.error?.code}`);

  const tooMuch = await client.POST('/api/v1/accounts/{userId}/debits', {
    params: {
      path: { userId: tokens.userId },
      header: { 'idempotency-key': 'job_2', 'Accept-Language': 'ru' },
    },
    headers: { 'x-api-key': apiKey },
    body: { amount: 1_000 },
  });
  // The error is typed from the shared error schemas: `code` is one of the documented codes.
  const refusal: 'insufficient_credits' | string | undefined = tooMuch.error?.code;

  const ledger = await client.GET('/api/v1/credits/ledger', {
    headers: auth(tokens.user),
    params: { query: { expand: ['purchase'] } },
  });
  if (!ledger.data) throw new Error(`ledger: ${ledger.error?.code}`);

  const purchase = await client.GET('/api/v1/credit-packages/purchases/{purchaseId}', {
    headers: auth(tokens.user),
    params: { path: { purchaseId }, query: { expand: ['package'] } },
  });
  if (!purchase.data) throw new Error(`purchase: ${purchase.error?.code}`);

  return {
    packagesBefore: before,
    packageId: pkg.id,
    balanceAfterPurchase: balance.data.data.balance,
    debit: {
      status: debit.response.status,
      balance: debit.data.data.balance,
      entryId: debit.data.data.entry.id,
    },
    replay: {
      status: replay.response.status,
      replayed: replay.response.headers.get('Idempotent-Replayed'),
      entryId: replay.data.data.entry.id,
    },
    refusal: { status: tooMuch.response.status, code: refusal, message: tooMuch.error?.errors[0] },
    ledger: ledger.data.data.items.map((e) => ({
      type: e.type,
      amount: e.amount,
      purchaseId: e.purchaseId,
      purchaseStatus: e.purchase?.status ?? null,
    })),
    purchasePackageName: purchase.data.data.package?.name,
  };
}
