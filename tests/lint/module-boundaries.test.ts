import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = path.join(ROOT, 'node_modules/.bin/depcruise');

/** Runs the lint's boundary check in `cwd`: its exit code and what it printed. */
async function cruise(cwd: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(DEPCRUISE, ['src', '--config', CONFIG], { cwd });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('npm run lint: module boundaries', () => {
  let dir: string;
  beforeAll(async () => {
    // A tree with one of each wrong import: into a module past its index.ts, the ledger into another module,
    // and a circle.
    dir = await mkdtemp(path.join(os.tmpdir(), 'boundaries-'));
    const files: Record<string, string> = {
      'tsconfig.json': JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          allowImportingTsExtensions: true,
        },
      }),
      'src/app.ts': "import { inner } from './modules/catalog/inner.ts';\nexport const app = inner;\n",
      'src/modules/catalog/index.ts': "export { inner } from './inner.ts';\n",
      'src/modules/catalog/inner.ts': 'export const inner = 1;\n',
      'src/modules/ledger/index.ts': "export { debit } from './debit.ts';\n",
      'src/modules/ledger/debit.ts':
        "import { inner } from '../catalog/index.ts';\nexport const debit = inner;\n",
      'src/modules/purchases/index.ts': "export { a } from './a.ts';\n",
      'src/modules/purchases/a.ts': "import { b } from './b.ts';\nexport const a = () => b();\n",
      'src/modules/purchases/b.ts': "import { a } from './a.ts';\nexport const b = () => a();\n",
    };
    for (const [name, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), text);
    }
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('passes on the repository as it is', async () => {
    const { code, out } = await cruise(ROOT);
    expect(out).toContain('no dependency violations found');
    expect(code).toBe(0);
  });

  it('fails on an import past a module index, on the ledger importing a module, and on a circle', async () => {
    const { code, out } = await cruise(dir);
    expect(code).not.toBe(0);
    expect(out).toMatch(/module-through-index: src\/app\.ts → src\/modules\/catalog\/inner\.ts/);
    expect(out).toMatch(
      /ledger-depends-on-no-module: src\/modules\/ledger\/debit\.ts → src\/modules\/catalog\/index\.ts/,
    );
    expect(out).toMatch(/no-circular: src\/modules\/purchases\/a\.ts/);
  });
});
