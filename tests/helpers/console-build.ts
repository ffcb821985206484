import { buildConsole } from '../../console/build.ts';

/** Vitest global setup: the console's static files exist and are current before any test serves them. */
export default async function setup() {
  const started = Date.now();
  if (await buildConsole()) console.log(`console built into console/dist in ${Date.now() - started} ms`);
}
