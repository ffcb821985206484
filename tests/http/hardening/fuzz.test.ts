import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import { asAdmin, asUser, cleanup, createApiKey } from '../../helpers/app.ts';
import { startFakeRevenuecat } from '../../helpers/fake-revenuecat.ts';
import { stripeEvent, WEBHOOK_SECRET } from '../../helpers/fake-stripe.ts';
import { RC_AUTH, rcBody } from '../../helpers/revenuecat.ts';
import {
  buildStripeApp,
  createPackage,
  type StripeTestApp,
} from '../../modules/providers/stripe/stripe-helpers.ts';

/**
 * A fuzz pass over the whole OpenAPI document the app serves (/docs/json), so routes added later are covered
 * without touching this file. For every operation, every string (body field at any depth, path, query and
 * header parameter) is sent with NUL, a lone surrogate and 10,000 characters, and every integer and number
 * with 0, -1, 1.5 and 2^63, each alone on an otherwise valid request, with admin credentials; each operation
 * is also called once without credentials. No answer may be a 5xx, and every /api/v1 and /webhooks answer
 * uses the envelope.
 */

type Schema = {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minimum?: number;
  minLength?: number;
  default?: unknown;
  nullable?: boolean;
  additionalProperties?: boolean | Schema;
  $ref?: string;
};
interface Parameter {
  $ref?: string;
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema: Schema;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
}
type Doc = {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema>; parameters?: Record<string, Parameter> };
};

const NUL = 'fuzz\u0000nul';
const LONE = 'fuzz\ud800lone';
const LONG = 'a'.repeat(10_000);
const STRINGS = [NUL, LONE, LONG];
const NUMBERS = [0, -1, 1.5, 2 ** 63];
/** Dates Postgres has no room for (year 0000) or at the edge of what it and JS hold. */
const DATES = ['0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z', '1969-12-31T23:59:59.999999999Z'];
const stringsFor = (schema: { format?: string }) =>
  schema.format === 'date-time' || schema.format === 'date' ? [...STRINGS, ...DATES] : STRINGS;
/** In a URL: a lone surrogate can only arrive as its (invalid) UTF-8 bytes. */
const urlText = (s: string) => (s === LONE ? 'fuzz%ED%A0%80lone' : encodeURIComponent(s));

interface Request {
  method: string;
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  /** What was mutated, for the failure message. */
  label: string;
}

describe('fuzz pass over the OpenAPI document', () => {
  let t: StripeTestApp;
  let doc: Doc;
  const known: Record<string, string> = { userId: 'fuzz_user' };
  /** Path parameters of the routes under a prefix, where `id` is not the package's. */
  const knownByPath: Record<string, Record<string, string>> = {};

  beforeAll(async () => {
    // Every provider configured (against local fakes), so a 503 can only mean a fault.
    const revenuecat = await startFakeRevenuecat();
    cleanup(() => revenuecat.close());
    t = await buildStripeApp({
      REVENUECAT_WEBHOOK_AUTH: RC_AUTH,
      REVENUECAT_API_KEY: revenuecat.apiKey,
      REVENUECAT_API_URL: revenuecat.url,
      ALLOW_DEV_PURCHASES: 'true',
    });
    const pack = await createPackage(t.app, { revenuecatProductIds: ['fuzz_product'] });
    known.id = pack.id;
    known.packageId = pack.id;
    const bought = await t.app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages/purchase',
      headers: asUser('fuzz_user'),
      payload: { packageId: pack.id },
    });
    known.purchaseId = bought.json().data.purchase.id;
    await createApiKey(t.app, ['ledger:read']);
    // A webhook endpoint with a delivery of a real event, so its routes are fuzzed past the 404.
    const endpoint = await t.app.inject({
      method: 'POST',
      url: '/api/v1/webhook-endpoints',
      headers: asAdmin(),
      payload: { url: 'https://hooks.example.test/fuzz', events: ['*'], lowBalanceThresholds: [10] },
    });
    knownByPath['/api/v1/webhook-endpoints'] = { id: endpoint.json().data.id };
    const { rows } = await t.pg.query(
      `insert into webhook_deliveries (endpoint_id, event_id)
       select $1, max(id) from events returning id, event_id`,
      [endpoint.json().data.id],
    );
    knownByPath['/api/v1/webhook-endpoints'].deliveryId = `dlv_${rows[0].id}`;
    knownByPath['/api/v1/events'] = { id: `evt_${rows[0].event_id}` };
    doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json();
  });

  const resolve = (s: Schema | undefined): Schema => {
    let schema = s ?? {};
    while (schema.$ref) {
      const name = schema.$ref.replace(/^#\/components\/schemas\//, '');
      schema = doc.components?.schemas?.[name] ?? {};
    }
    return schema;
  };

  /** An operation's parameters, the shared ones (`#/components/parameters/Limit`) looked up. */
  const parametersOf = (op: Operation): Parameter[] =>
    (op.parameters ?? []).map((p) =>
      p.$ref ? (doc.components?.parameters?.[p.$ref.replace(/^#\/components\/parameters\//, '')] ?? p) : p,
    );

  /** A valid-looking value for a schema, so that a mutation elsewhere is the only thing wrong. */
  function example(s: Schema | undefined, name = ''): unknown {
    const schema = resolve(s);
    if (schema.default !== undefined) return schema.default;
    if (schema.enum?.length) return schema.enum.find((v) => v !== null) ?? null;
    const alt = schema.anyOf ?? schema.oneOf;
    if (alt)
      return example(alt.find((a) => resolve(a).type !== 'null' && !resolve(a).nullable) ?? alt[0], name);
    if (schema.allOf) return Object.assign({}, ...schema.allOf.map((a) => example(a, name)));
    switch (schema.type) {
      case 'object': {
        const out: Record<string, unknown> = {};
        for (const [key, child] of Object.entries(schema.properties ?? {})) out[key] = example(child, key);
        return out;
      }
      case 'array':
        return [example(schema.items, name)];
      case 'integer':
      case 'number':
        return Math.max(schema.minimum ?? 1, 1);
      case 'boolean':
        return false;
      case 'string':
        if (known[name]) return known[name];
        if (schema.format === 'date-time') return new Date().toISOString();
        if (schema.pattern === '^[a-z]{3}$') return 'usd';
        if (schema.pattern?.startsWith('^https?://')) return 'https://app.example.test/done';
        return `fuzz_${name || 'text'}`;
      default:
        return 'fuzz';
    }
  }

  /** Every string and number position in a body: its path and schema. */
  function leaves(
    s: Schema | undefined,
    path: (string | number)[] = [],
  ): { path: (string | number)[]; kind: 'string' | 'number'; schema: Schema }[] {
    const schema = resolve(s);
    const alt = schema.anyOf ?? schema.oneOf ?? schema.allOf;
    if (alt)
      return alt
        .flatMap((a) => leaves(a, path))
        .filter(
          (l, i, all) =>
            all.findIndex((o) => o.path.join('.') === l.path.join('.') && o.kind === l.kind) === i,
        );
    if (schema.type === 'object' || schema.properties) {
      const own = Object.entries(schema.properties ?? {}).flatMap(([key, child]) =>
        leaves(child, [...path, key]),
      );
      // A map (metadata): one entry of its value schema.
      if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        own.push(...leaves(schema.additionalProperties, [...path, 'fuzz_key']));
      }
      return own;
    }
    if (schema.type === 'array') return leaves(schema.items, [...path, 0]);
    if (schema.type === 'string') return [{ path, kind: 'string', schema }];
    if (schema.type === 'integer' || schema.type === 'number') return [{ path, kind: 'number', schema }];
    return [];
  }

  function setAt(target: unknown, path: (string | number)[], value: unknown): unknown {
    const copy = structuredClone(target ?? {}) as Record<string | number, unknown>;
    let node = copy;
    path.forEach((key, i) => {
      if (i === path.length - 1) node[key] = value;
      else {
        if (!node[key] || typeof node[key] !== 'object')
          node[key] = typeof path[i + 1] === 'number' ? [] : {};
        node = node[key] as Record<string | number, unknown>;
      }
    });
    return copy;
  }

  function requestsFor(path: string, method: string, op: Operation): Request[] {
    const params: Record<string, string> = {};
    const query: Record<string, string> = {};
    const headers: Record<string, string> = {};
    const own = Object.entries(knownByPath).find(([prefix]) => path.startsWith(prefix))?.[1];
    for (const p of parametersOf(op)) {
      const value = String((p.in === 'path' && own?.[p.name]) || example(p.schema, p.name));
      if (p.in === 'path') params[p.name] = value;
      else if (p.in === 'header' && p.required) headers[p.name] = value;
    }
    const bodySchema = op.requestBody?.content?.['application/json']?.schema;
    // RevenueCat's schema names few of its fields: a real event (of the seeded product) reaches the grant.
    const body =
      path === '/webhooks/revenuecat'
        ? rcBody('rc-non-renewing', { product_id: 'fuzz_product', app_user_id: 'fuzz_rc_user' })
        : bodySchema
          ? example(bodySchema)
          : undefined;
    const base: Request = { method, path, params, query, headers, body, label: 'valid' };
    const out: Request[] = [base];
    for (const p of parametersOf(op)) {
      const schema = resolve(p.schema);
      const numeric = schema.type === 'integer' || schema.type === 'number';
      const values = numeric ? NUMBERS.map(String).concat(STRINGS.slice(0, 1)) : stringsFor(schema);
      for (const v of values) {
        const label = `${p.in}.${p.name}=${JSON.stringify(v.slice(0, 20))}`;
        if (p.in === 'path') out.push({ ...base, params: { ...params, [p.name]: v }, label });
        if (p.in === 'query') out.push({ ...base, query: { ...query, [p.name]: v }, label });
        if (p.in === 'header' && p.name !== 'authorization')
          out.push({ ...base, headers: { ...headers, [p.name]: v }, label });
      }
    }
    for (const leaf of leaves(bodySchema)) {
      const values: unknown[] = leaf.kind === 'string' ? stringsFor(leaf.schema) : NUMBERS;
      for (const v of values) {
        out.push({
          ...base,
          body: setAt(body, leaf.path, v),
          label: `body.${leaf.path.join('.')}=${JSON.stringify(String(v).slice(0, 20))}`,
        });
      }
    }
    return out;
  }

  /** The Stripe webhook takes raw signed bytes (no body schema): its event's fields, mutated and signed. */
  function stripeRequests(): Request[] {
    const base = stripeEvent('checkout.session.completed', {
      id: 'cs_fuzz',
      client_reference_id: known.purchaseId,
      payment_status: 'paid',
      amount_total: 499,
      metadata: { purchaseId: known.purchaseId },
    });
    const fields: (string | number)[][] = [
      ['id'],
      ['type'],
      ['data', 'object', 'id'],
      ['data', 'object', 'client_reference_id'],
      ['data', 'object', 'metadata', 'purchaseId'],
    ];
    const out: Request[] = [];
    for (const f of fields)
      for (const v of STRINGS)
        out.push({
          method: 'POST',
          path: '/webhooks/stripe',
          params: {},
          query: {},
          headers: {},
          body: setAt(base, f, v),
          label: `stripe ${f.join('.')}`,
        });
    for (const v of NUMBERS)
      out.push({
        method: 'POST',
        path: '/webhooks/stripe',
        params: {},
        query: {},
        headers: {},
        body: setAt(base, ['data', 'object', 'amount_total'], v),
        label: 'stripe amount_total',
      });
    return out;
  }

  function send(app: App, r: Request, credentials: boolean) {
    const url =
      r.path.replace(/\{(\w+)\}/g, (_m, name: string) => urlText(r.params[name] ?? 'x')) +
      (Object.keys(r.query).length
        ? `?${Object.entries(r.query)
            .map(([k, v]) => `${k}=${urlText(v)}`)
            .join('&')}`
        : '');
    const headers: Record<string, string> = { ...r.headers };
    let payload: string | undefined;
    if (r.body !== undefined) {
      payload = JSON.stringify(r.body);
      headers['content-type'] = 'application/json';
    }
    if (credentials) {
      if (r.path === '/webhooks/revenuecat') headers.authorization = RC_AUTH;
      else if (r.path === '/webhooks/stripe')
        headers['stripe-signature'] = Stripe.webhooks.generateTestHeaderString({
          payload: payload ?? '',
          secret: WEBHOOK_SECRET,
        });
      else Object.assign(headers, asAdmin());
      // A unique key per request, unless the key itself is what is being fuzzed.
      if ('idempotency-key' in headers && !r.label.startsWith('header.idempotency-key'))
        headers['idempotency-key'] = `fuzz-${Math.random()}`;
    }
    return app.inject({
      method: r.method.toUpperCase() as 'GET',
      url,
      headers,
      ...(payload !== undefined ? { payload } : {}),
    });
  }

  it('finds no 5xx and no answer outside the envelope', async () => {
    const requests: { r: Request; credentials: boolean }[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
        const all =
          path === '/webhooks/stripe'
            ? [...requestsFor(path, method, op), ...stripeRequests()]
            : requestsFor(path, method, op);
        // Deletes last: the seeded package and key must stay for the other operations' requests.
        for (const r of all) requests.push({ r, credentials: true });
        const [base] = all;
        if (base) requests.push({ r: base, credentials: false });
      }
    }
    requests.sort((a, b) => Number(a.r.method === 'delete') - Number(b.r.method === 'delete'));
    const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);

    const failures: string[] = [];
    const byStatus = new Map<number, number>();
    const started = Date.now();
    for (let i = 0; i < requests.length; i += 8) {
      await Promise.all(
        requests.slice(i, i + 8).map(async ({ r, credentials }) => {
          const res = await send(t.app, r, credentials);
          byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1);
          const where = `${r.method.toUpperCase()} ${r.path} ${r.label}${credentials ? '' : ' (no credentials)'}`;
          if (res.statusCode >= 500) failures.push(`${where}: ${res.statusCode} ${res.body.slice(0, 200)}`);
          if (r.path.startsWith('/api/v1') || r.path.startsWith('/webhooks')) {
            let body: Record<string, unknown> | undefined;
            try {
              body = res.json();
            } catch {
              body = undefined;
            }
            const enveloped =
              body !== undefined &&
              typeof body.isSuccess === 'boolean' &&
              body.statusCode === res.statusCode &&
              Array.isArray(body.errors) &&
              typeof body.timestamp === 'string' &&
              (body.isSuccess || typeof body.code === 'string');
            if (!enveloped) failures.push(`${where}: not in the envelope: ${res.body.slice(0, 200)}`);
          }
        }),
      );
    }
    const fivexx = [...byStatus].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    console.log(
      `fuzz: ${requests.length} requests over ${operations} operations in ${Date.now() - started} ms; ` +
        `5xx: ${fivexx}; by status: ${JSON.stringify(Object.fromEntries([...byStatus].sort(([a], [b]) => a - b)))}`,
    );
    expect(requests.length).toBeGreaterThan(300);
    expect(failures).toEqual([]);
  });
});
