import { readFile } from 'node:fs/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateOpenApi, OPENAPI_PATH } from '../../src/cli/openapi.ts';
import { buildTestApp } from '../helpers/app.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
const DEV_PURCHASE = '/api/v1/credit-packages/purchase';

interface Operation {
  tags?: string[];
  summary?: string;
  responses?: Record<string, unknown>;
}
type Document = {
  openapi: string;
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
};

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

    const ui = await app.inject({ method: 'GET', url: '/docs' });
    expect([200, 302]).toContain(ui.statusCode);
    // And the route itself answers like any unknown route.
    const purchase = await app.inject({ method: 'POST', url: DEV_PURCHASE, payload: { packageId: 'pkg_x' } });
    expect(purchase.statusCode).toBe(404);
    expect(purchase.json()).toMatchObject({ isSuccess: false, code: 'not_found' });
  });
});
