import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanup } from './app.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** What it wrote to stderr alone. */
  errors(): string;
  /** Resolves with the exit code once it exits (rejects after `ms`). */
  exited(ms?: number): Promise<number | null>;
  /** Polls `url` until it answers 200 (rejects if the process exits first or after `ms`). */
  ready(url: string, ms?: number): Promise<void>;
  stop(): Promise<number | null>;
}

/** `node src/server.ts` (or another script) as a child process, with only `env` (and PATH); killed when the test ends. */
export function startServer(
  env: Record<string, string>,
  script = 'src/server.ts',
  args: string[] = [],
): ServerProcess {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
    err += d;
  });
  const exited = (ms = 20_000) =>
    new Promise<number | null>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      const timer = setTimeout(() => reject(new Error(`the server did not exit in time:\n${out}`)), ms);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  const server: ServerProcess = {
    child,
    output: () => out,
    errors: () => err,
    exited,
    async ready(url, ms = 60_000) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${out}`);
        const res = await fetch(url).catch(() => undefined);
        if (res?.status === 200) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`${url} did not answer 200 in time:\n${out}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited(15_000).catch(() => {
        child.kill('SIGKILL');
        return null;
      });
    },
  };
  cleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return server;
}
