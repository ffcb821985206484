import { readFile } from 'node:fs/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateOpenApi, OPENAPI_PATH } from '../../src/cli/openapi.ts';
import { buildTestApp } from '../helpers/app.ts';
import { expectError } from '../helpers/envelope.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
const DEV_PURCHASE = '/api/v1/credit-packages/purchase';

interface Response {
  $ref?: string;
  description?: string;
  headers?: Record<string, { $ref?: string }>;
  content?: Record<string, { schema?: { $ref?: string } }>;
}
interface Operation {
  operationId?: string;
  tags?: string[];
  summary?: string;
  description?: string;
  parameters?: {
    in?: string;
    name?: string;
    $ref?: string;
    required?: boolean;
    schema?: { default?: unknown };
  }[];
  requestBody?: { content?: Record<string, { example?: unknown; examples?: unknown }> };
  responses?: Record<string, Response>;
}
type Document = {
  openapi: string;
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components: {
    schemas: Record<string, unknown>;
    headers?: Record<string, unknown>;
    responses?: Record<string, Response>;
    parameters?: Record<string, NonNullable<Operation['parameters']>[number]>;
  };
};

/** A response as a client reads it: a shared one (`$ref: '#/components/responses/X'`) is looked up. */
function resolve(doc: Document, response: Response): Response {
  const name = response.$ref?.replace('#/components/responses/', '');
  return name === undefined ? response : (doc.components.responses?.[name] ?? {});
}

function operations(doc: Document): [string, Operation][] {
  return Object.entries(doc.paths).flatMap(([p, item]) =>
    METHODS.flatMap((m) => (item[m] ? [[`${m.toUpperCase()} ${p}`, item[m]] as [string, Operation]] : [])),
  );
}

describe('openapi.yaml', () => {
  it('is in sync with the routes (run `npm run openapi` after changing a route)', async () => {
    const committed = await readFile(OPENAPI_PATH, 'utf8');
    const generated = await generateOpenApi();
    expect(committed).toBe(generated);
  });

  it('is a valid OpenAPI 3 document', async () => {
    const doc = parse(await readFile(OPENAPI_PATH, 'utf8')) as Document;
    expect(doc.openapi).toMatch(/^3\./);
    // validate() dereferences in place: give it its own copy.
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('documents every API route with tags, a summary and its responses', async () => {
    const doc = parse(await readFile(OPENAPI_PATH, 'utf8')) as Document;
    const paths = Object.keys(doc.paths);
    expect(paths).toEqual(
      expect.arrayContaining(['/healthz', '/readyz', '/api/v1/api-keys', '/api/v1/api-keys/{id}']),
    );
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        expect(op.tags?.length, `${method} ${p} tags`).toBeGreaterThan(0);
        expect(op.summary, `${method} ${p} summary`).toBeTruthy();
        expect(Object.keys(op.responses ?? {}).length, `${method} ${p} responses`).toBeGreaterThan(0);
      }
    }
  });
});

describe('the conventions generated clients rely on (docs/api-conventions.md)', () => {
  it('gives every operation a unique camelCase operationId, tags, a summary and a description', async () => {
    const doc = parse(await readFile(OPENAPI_PATH, 'utf8')) as Document;
    const ids = new Set<string>();
    for (const [name, op] of operations(doc)) {
      expect(op.operationId, `${name} operationId`).toMatch(/^[a-z]+[A-Za-z0-9]*$/);
      expect(ids.has(op.operationId as string), `${name} operationId is unique`).toBe(false);
      ids.add(op.operationId as string);
      expect(op.tags?.length, `${name} tags`).toBeGreaterThan(0);
      expect(op.description?.length ?? 0, `${name} description`).toBeGreaterThan(20);
    }
    expect([...ids]).toEqual(
      expect.arrayContaining(['listPackages', 'createDebit', 'getMyBalance', 'getMyPurchase']),
    );
  });

  it('describes every response, declares its headers, and points errors at one schema per status', async () => {
    const text = await readFile(OPENAPI_PATH, 'utf8');
    expect(text).not.toContain('Default Response');
    const doc = parse(text) as Document;
    expect(Object.keys(doc.components.headers ?? {})).toEqual(
      expect.arrayContaining(['RequestId', 'ContentLanguage', 'RetryAfter', 'IdempotentReplayed']),
    );
    for (const [name, op] of operations(doc)) {
      for (const [status, own] of Object.entries(op.responses ?? {})) {
        const response = resolve(doc, own);
        expect(response.description, `${name} ${status}`).toBeTruthy();
        expect(response.headers?.['x-request-id']?.$ref, `${name} ${status} x-request-id`).toBe(
          '#/components/headers/RequestId',
        );
        if (Number(status) >= 400) {
          expect(status, `${name}: errors are listed by status, not by range`).toMatch(/^\d{3}$/);
          expect(response.content?.['application/json']?.schema?.$ref, `${name} ${status}`).toMatch(
            /^#\/components\/schemas\/[A-Za-z]+Error$/,
          );
        }
        if (status === '429') expect(response.headers?.['Retry-After'], `${name} 429`).toBeTruthy();
      }
      expect(op.parameters, `${name} Accept-Language`).toContainEqual({
        $ref: '#/components/parameters/AcceptLanguage',
      });
    }
    const debit = doc.paths['/api/v1/accounts/{userId}/debits']?.post;
    expect(resolve(doc, debit?.responses?.['200'] ?? {}).headers?.['Idempotent-Replayed']).toBeTruthy();
    expect(Object.keys(debit?.responses ?? {})).toEqual(expect.arrayContaining(['201', '402', '409']));
  });

  it('declares each error response that is the same on every operation once, in components.responses', async () => {
    const doc = parse(await readFile(OPENAPI_PATH, 'utf8')) as Document;
    const shared = doc.components.responses ?? {};
    expect(Object.keys(shared)).toEqual(
      expect.arrayContaining(['ValidationError', 'UnauthorizedError', 'RateLimitedError', 'InternalError']),
    );
    const uses = new Map<string, number>();
    for (const [, op] of operations(doc)) {
      for (const response of Object.values(op.responses ?? {})) {
        if (response.$ref) uses.set(response.$ref, (uses.get(response.$ref) ?? 0) + 1);
      }
    }
    const statusErrors = Object.entries(shared).filter(([id]) => id.endsWith('Error'));
    for (const [id, response] of statusErrors) {
      // A status's own error response is named after the schema it answers with.
      expect(response.content?.['application/json']?.schema?.$ref, id).toBe(`#/components/schemas/${id}`);
    }
    for (const id of Object.keys(shared)) {
      // Every shared response stands for one written the same way on two operations or more.
      expect(uses.get(`#/components/responses/${id}`) ?? 0, id).toBeGreaterThanOrEqual(2);
    }
    const descriptions = new Set(statusErrors.map(([, r]) => r.description));
    for (const [name, op] of operations(doc)) {
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        // Inline error responses are the ones with a description of their own.
        if (Number(status) >= 400 && !response.$ref)
          expect(descriptions.has(response.description), `${name} ${status} inline`).toBe(false);
      }
    }
    // The rate limit's 429, on every /api/v1 operation, is one of them.
    expect(doc.paths['/api/v1/accounts/{userId}/debits']?.post?.responses?.['429']?.$ref).toBe(
      '#/components/responses/RateLimitedError',
    );
  });

  it('leaves parameters the server defaults optional', async () => {
    const doc = parse(await readFile(OPENAPI_PATH, 'utf8')) as Document;
    let defaulted = 0;
    for (const [name, op] of operations(doc)) {
      for (const own of op.parameters ?? []) {
        // A shared one (`$ref: '#/components/parameters/Limit'`) is looked up, as a client does.
        const param = own.$ref
          ? (doc.components.parameters?.[own.$ref.replace('#/components/parameters/', '')] ?? {})
          : own;
        if (param.schema?.default === undefined) continue;
        defaulted++;
        expect(param.required, `${name} ?${param.name}`).toBe(false);
      }
    }
    expect(defaulted).toBeGreaterThanOrEqual(8); // limit on every list, includeInactive
  });

  it('gives the main request bodies an example', async () => {
    const doc = parse(await readFile(OPENAPI_PATH, 'utf8')) as Document;
    for (const [p, m] of [
      ['/api/v1/credit-packages', 'post'],
      ['/api/v1/credits/checkout', 'post'],
      ['/api/v1/accounts/{userId}/debits', 'post'],
      ['/api/v1/api-keys', 'post'],
      ['/api/v1/credit-packages/purchase', 'post'],
    ] as const) {
      const body = doc.paths[p]?.[m]?.requestBody?.content?.['application/json'];
      expect(body?.example ?? body?.examples, `${m} ${p}`).toBeTruthy();
    }
  });
});

describe('/docs', () => {
  it('serves the document at /docs/json and the UI at /docs, without the dev purchase route when disabled', async () => {
    const { app } = await buildTestApp();
    expect(app.config.allowDevPurchases).toBe(false);
    const res = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as Document;
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toContain('/api/v1/api-keys');
    expect(Object.keys(doc.paths)).not.toContain(DEV_PURCHASE);
    expect(res.body).not.toContain('credit-packages/purchase"');
    // /docs/yaml is the same document in openapi.yaml's compact layout (toYaml in src/http/openapi.ts).
    const yaml = await app.inject({ method: 'GET', url: '/docs/yaml' });
    expect(yaml.statusCode).toBe(200);
    expect(parse(yaml.body)).toEqual(doc);
    expect(yaml.body).toContain('{$ref: "#/components/parameters/AcceptLanguage"}');

    const ui = await app.inject({ method: 'GET', url: '/docs' });
    expect([200, 302]).toContain(ui.statusCode);
    // And the route itself answers like any unknown route.
    const purchase = await app.inject({ method: 'POST', url: DEV_PURCHASE, payload: { packageId: 'pkg_x' } });
    expectError(purchase, 404, 'not_found');
  });
});
