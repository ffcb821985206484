import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.ts';

describe('the operations console is served at /console/ (CONTRACT section 14)', async () => {
  const { app } = await buildTestApp();

  it('redirects /console to /console/, keeping the query', async () => {
    const res = await app.inject({ method: 'GET', url: '/console?x=1' });
    expect(res.statusCode).toBe(301);
    expect(res.headers.location).toBe('/console/?x=1');
  });

  it('answers the app for /console/ and every deep link, without credentials and never cached', async () => {
    for (const url of [
      '/console/',
      '/console/accounts/user_1',
      '/console/provider-events/pe_1',
      '/console/packages',
      '/console/api-keys',
      '/console/webhooks',
      '/console/events',
      '/console/reports',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toContain('<div id="app"></div>');
    }
  });

  it('sends the security headers: a strict CSP, no framing, no referrer', async () => {
    const res = await app.inject({ method: 'GET', url: '/console/' });
    const csp = String(res.headers['content-security-policy']);
    const directives = new Map(
      csp.split(';').map((d) => {
        const [name = '', ...values] = d.trim().split(/\s+/);
        return [name, values] as const;
      }),
    );
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('serves every script and stylesheet the page names from the service, cached for good', async () => {
    const page = await app.inject({ method: 'GET', url: '/console/' });
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const asset of assets) {
      expect(asset, 'no other host, no CDN').toMatch(/^\/console\/assets\//);
      const res = await app.inject({ method: 'GET', url: asset });
      expect(res.statusCode, asset).toBe(200);
      expect(res.headers['cache-control']).toContain('immutable');
      expect(res.headers['content-security-policy']).toBeDefined();
    }
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  });

  it('weighs at most 80 KB of JavaScript and CSS, gzipped', async () => {
    const page = await app.inject({ method: 'GET', url: '/console/' });
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
    let gzipped = 0;
    for (const asset of assets) {
      gzipped += gzipSync((await app.inject({ method: 'GET', url: asset })).rawPayload, { level: 9 }).length;
    }
    expect(gzipped).toBeLessThanOrEqual(80 * 1024);
    // The production build: a development one names its source files (and weighs 20 KB more).
    const script = await app.inject({ method: 'GET', url: assets.find((a) => a.endsWith('.js')) ?? '' });
    expect(script.body).not.toContain('console/src/');
  });

  it('keeps the API as it was: no console headers on /api/v1, and an unknown asset is a 404', async () => {
    const api = await app.inject({ method: 'GET', url: '/api/v1/credit-packages' });
    expect(api.statusCode).toBe(200);
    expect(api.headers['content-security-policy']).toBeUndefined();
    expect(api.headers['x-frame-options']).toBeUndefined();
    const missing = await app.inject({ method: 'GET', url: '/console/assets/nothing-here.js' });
    expect(missing.statusCode).toBe(404);
  });

  it('is not in the OpenAPI document', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: object };
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/console'))).toBe(false);
  });
});
