import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';

export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

/**
 * The OpenAPI document as the committed `openapi.yaml` holds it: built from the route schemas with the dev
 * purchase route registered (it is documented as existing only in test and development environments).
 */
export async function generateOpenApi(): Promise<string> {
  const config = loadConfig({
    NODE_ENV: 'development',
    ALLOW_DEV_PURCHASES: 'true',
    // Never connected to: the pool opens connections lazily and nothing here queries.
    DATABASE_URL: 'postgres://openapi@127.0.0.1:1/openapi',
  });
  const app = await buildApp(config, { logger: false });
  await app.ready();
  const yaml = app.swagger({ yaml: true });
  await app.close();
  return yaml;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeFile(OPENAPI_PATH, await generateOpenApi());
  console.log(`wrote ${OPENAPI_PATH}`);
}
