import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The operations console: static files under console/dist, served by the service at /console/
 * (src/http/console.ts). Preact's JSX runtime, no framework plugin; every asset is bundled, nothing from a CDN.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline scripts (the CSP forbids them) and no polyfill for a feature every supported browser has.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
