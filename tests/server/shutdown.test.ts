import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { asUser, buildTestApp } from '../helpers/app.ts';
import { expectError } from '../helpers/envelope.ts';

function get(agent: http.Agent, port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; socket: unknown }>(
    (resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, socket: req.socket }),
        );
      });
      req.on('error', reject);
    },
  );
}

describe('shutdown', () => {
  it('a request reaching a closing server on a kept-alive connection gets the envelope', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    let started: () => void = () => {};
    const inFlight = new Promise<void>((r) => {
      started = r;
    });
    const { app } = await buildTestApp({}, undefined, {
      beforeReady: (a) => {
        a.get('/api/v1/test/slow', async (_request, reply) => {
          started();
          await released;
          return reply.ok({ slow: true });
        });
      },
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    // One socket, kept alive: the second request goes on the connection the first one used.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const slow = get(agent, port, '/api/v1/test/slow');
      await inFlight;
      // The connection is busy, so close() does not reap it as idle.
      const closed = app.close();
      await new Promise((r) => setTimeout(r, 50));
      release();
      const first = await slow;
      expect(first.status).toBe(200);

      const late = await get(agent, port, '/api/v1/credits/balance', asUser('late_user'));
      expect(late.socket).toBe(first.socket);
      expect(late.headers.connection).toBe('close');
      expectError({ statusCode: late.status, body: late.body }, 503, 'service_unavailable');
      await closed;
    } finally {
      agent.destroy();
    }
  });
});
