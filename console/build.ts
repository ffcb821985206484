/**
 * Builds the console when console/dist is missing or older than its sources, so `npm start` (prestart) and
 * `npm test` (global setup) serve a current console with no extra step, and do nothing when it is current.
 * `--force` builds anyway. Vite is a dev dependency: the Docker image builds in its build stage instead.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist', 'index.html');
const sources = [path.join(here, 'src'), path.join(here, 'index.html'), path.join(here, 'vite.config.ts')];

function newest(file: string): number {
  // The Docker image has the built console without its sources: nothing is newer than the build there.
  const stat = statSync(file, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(file).map((name) => newest(path.join(file, name))));
}

/** Whether console/dist is missing or older than anything it is built from. */
export function consoleIsStale(): boolean {
  let built: number;
  try {
    built = statSync(dist).mtimeMs;
  } catch {
    return true;
  }
  return sources.some((source) => newest(source) > built);
}

/** Builds the console into console/dist when stale (or always with `force`); says whether it built. */
export async function buildConsole({ force = false } = {}): Promise<boolean> {
  if (!force && !consoleIsStale()) return false;
  let build: typeof import('vite').build;
  try {
    ({ build } = await import('vite'));
  } catch {
    // Installed without dev dependencies (npm ci --omit=dev): the service still starts, and /console/ says
    // how to build the console. The Docker image builds it in its own stage.
    console.warn(
      'The console is not built and Vite (a dev dependency) is not installed: /console/ will say so.',
    );
    return false;
  }
  // Vite makes a development build (JSX with source locations, Preact's checks: 20 KB more) whenever
  // NODE_ENV says anything but production, as it does under the test runner.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ configFile: path.join(here, 'vite.config.ts'), logLevel: 'warn' });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const force = process.argv.includes('--force');
  const built = await buildConsole({ force });
  console.log(built ? 'console built into console/dist' : 'console/dist is up to date');
}
