import { access, readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function pages(): Promise<string[]> {
  const docs = (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

describe('README and docs/', () => {
  it('link only to files that exist', async () => {
    const broken: string[] = [];
    for (const page of await pages()) {
      const text = await readFile(join(ROOT, page), 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue;
        await access(join(ROOT, dirname(page), target)).catch(() => broken.push(`${page} -> ${target}`));
      }
    }
    expect(broken).toEqual([]);
  });

  it('document the repository alone: nothing points outside it', async () => {
    for (const page of await pages()) {
      const text = await readFile(join(ROOT, page), 'utf8');
      expect(text, page).not.toMatch(/CONTRACT|\.\.\/shared/);
    }
  });

  it('keep the README a front door: two screens, with the walk-through and the links', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(110);
    expect(readme).toContain('ALLOW_DEV_PURCHASES=true npm start');
    expect(readme).toContain('npm test');
    // Walk-through variables never overwrite the shell's own.
    expect(readme).not.toMatch(/^\s*(USER|HOME|PATH|PWD|SHELL)=/m);
  });
});
