import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** Bytes held while frozen, per direction; `null` marks an end to pass on after them. */
  toUpstream: (Buffer | null)[];
  toClient: (Buffer | null)[];
}

/**
 * A TCP proxy in front of the test Postgres that a test can cut (a network partition that resets
 * connections) or freeze (a server that stops answering without closing anything, like SIGSTOP: bytes are
 * held, not lost, and arrive when it thaws, so a query sent during the freeze runs afterwards).
 */
export class DatabaseProxy {
  readonly target: { host: string; port: number };
  port = 0;
  private server: net.Server | undefined;
  private readonly pairs = new Set<Pair>();
  private frozen = false;

  constructor(target: { host: string; port: number }) {
    this.target = target;
  }

  async start(port = 0): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    // Never the reason the test worker stays alive.
    server.unref();
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket) {
    const upstream = net.connect(this.target.port, this.target.host);
    const pair: Pair = { client, upstream, toUpstream: [], toClient: [] };
    this.pairs.add(pair);
    const destroy = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', destroy);
    upstream.on('error', destroy);
    const forward = (from: net.Socket, to: net.Socket, held: (Buffer | null)[]) => {
      from.on('data', (chunk: Buffer) => {
        if (this.frozen) held.push(chunk);
        else to.write(chunk);
      });
      from.on('end', () => {
        if (this.frozen) held.push(null);
        else to.end();
      });
      from.on('close', () => {
        if (!this.frozen) destroy();
      });
    };
    forward(client, upstream, pair.toUpstream);
    forward(upstream, client, pair.toClient);
  }

  /** Stops listening and cuts every open connection: the database is unreachable. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
    await closed;
  }

  /** Listens again on the same port. */
  async restore(): Promise<void> {
    await this.start(this.port);
  }

  /** From now on nothing passes either way, and nothing is closed: the database is frozen. */
  freeze(): void {
    this.frozen = true;
  }

  /** Delivers what was held, in order, and forwards again. */
  thaw(): void {
    this.frozen = false;
    for (const p of [...this.pairs]) {
      for (const [held, to] of [
        [p.toUpstream, p.upstream],
        [p.toClient, p.client],
      ] as const) {
        for (const chunk of held.splice(0)) {
          if (to.destroyed) break;
          if (chunk === null) to.end();
          else to.write(chunk);
        }
      }
      if (p.client.destroyed || p.upstream.destroyed) {
        // A side that closed during the freeze: the other side ends once it has what was held.
        if (!p.client.destroyed) p.client.end();
        if (!p.upstream.destroyed) p.upstream.end();
        this.pairs.delete(p);
      }
    }
  }
}

/** The same URL, through `proxy` (which must be started). */
export function throughProxy(url: string, proxy: DatabaseProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}

/** Where a Postgres URL points. */
export function targetOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 5432) };
}
