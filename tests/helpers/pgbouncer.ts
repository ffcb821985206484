import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/db/embedded.ts';

/** PGBOUNCER, then PATH, then Debian's /usr/sbin. */
export function pgbouncerBinary(): string | undefined {
  const candidates = [process.env.PGBOUNCER];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter))
    candidates.push(path.join(dir, 'pgbouncer'));
  candidates.push('/usr/sbin/pgbouncer');
  return candidates.find((c): c is string => !!c && existsSync(c));
}

/**
 * A PgBouncer in transaction mode (its own ini in a temp dir, on a free port) in front of the Postgres of
 * `adminUrl`, when the binary is installed (`.ci/run` installs Debian's package); undefined when it is not.
 * Any database name the client asks for is the same database on the server (the `*` entry). `poolSize`
 * server connections per database. Used by the test setup and the bench.
 */
export async function startPgBouncer(
  adminUrl: string,
  poolSize = 20,
): Promise<{ address: string; stop: () => Promise<void> } | undefined> {
  const bin = pgbouncerBinary();
  if (!bin) return undefined;
  const server = new URL(adminUrl);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-test-pgbouncer-'));
  await chmod(dir, 0o755);
  const port = await freePort();
  const target = [
    `host=${server.hostname}`,
    `port=${server.port || 5432}`,
    `user=${decodeURIComponent(server.username || 'postgres')}`,
    ...(server.password ? [`password=${decodeURIComponent(server.password)}`] : []),
  ].join(' ');
  const ini = [
    '[databases]',
    `* = ${target}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    // Clients are not authenticated (loopback, tests); every server login is the `user=` above.
    'auth_type = any',
    'pool_mode = transaction',
    'max_client_conn = 1000',
    `default_pool_size = ${poolSize}`,
    'server_login_retry = 1',
    // PgBouncer refuses to run as root; it drops to this user after reading its files.
    ...(process.getuid?.() === 0 ? ['user = nobody'] : []),
  ].join('\n');
  const file = path.join(dir, 'pgbouncer.ini');
  await writeFile(file, `${ini}\n`, { mode: 0o644 });
  const child: ChildProcess = spawn(bin, [file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d) => {
    log += d;
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  const through = new URL(adminUrl);
  through.hostname = '127.0.0.1';
  through.port = String(port);
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    const c = new pg.Client({ connectionString: through.toString(), connectionTimeoutMillis: 1_000 });
    c.on('error', () => {});
    const ok = await c.connect().then(
      () => c.end().then(() => true),
      () => false,
    );
    if (ok) return { address: `127.0.0.1:${port}`, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`PgBouncer (${bin}) did not start:\n${log}`);
}
