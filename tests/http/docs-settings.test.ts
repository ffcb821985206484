import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateOpenApi } from '../../src/cli/openapi.ts';
import { buildTestApp } from '../helpers/app.ts';

describe('DOCS_ENABLED', () => {
  it('false: /docs and /docs/json answer 404 in the envelope', async () => {
    const { app } = await buildTestApp({ DOCS_ENABLED: 'false' });
    for (const url of ['/docs', '/docs/json']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ isSuccess: false, code: 'not_found' });
    }
  });

  it('default: served', async () => {
    const { app } = await buildTestApp();
    expect((await app.inject({ method: 'GET', url: '/docs/json' })).statusCode).toBe(200);
  });
});

describe('the Accept-Language parameter', () => {
  it('has the example en, so Swagger UI try-it calls answer in the default language', async () => {
    const document = parse(await generateOpenApi());
    const param = document.components.parameters.AcceptLanguage;
    expect(param.schema.example).toBe('en');
    expect(param.description).toMatch(/`en` \(the default\)/);
  });
});
