import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../../helpers/app.ts';
import { expectError } from '../../helpers/envelope.ts';

const TIMEOUT_MS = 300;

/** Writes `chunks` on a raw socket (`gapMs` apart) and resolves with the parsed response once the server closes. */
function raw(
  port: number,
  chunks: string[],
  gapMs = 0,
): Promise<{ statusCode: number; body: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding('latin1');
    socket.on('data', (d) => {
      text += d;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const match = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(text);
      if (!match) return reject(new Error(`no HTTP response: ${JSON.stringify(text)}`));
      resolve({
        statusCode: Number(match[1]),
        body: Buffer.from(match[2] ?? '', 'latin1').toString('utf8'),
        ms: Date.now() - started,
      });
    });
    let i = 0;
    const next = () => {
      if (socket.destroyed || i >= chunks.length) return;
      socket.write(chunks[i++] as string, 'latin1');
      timer = setTimeout(next, gapMs);
    };
    socket.on('connect', next);
  });
}

describe('errors raised by the HTTP layer use the envelope', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await buildTestApp({ REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
  });

  it('bad %-encoding in the path (FST_ERR_BAD_URL) is a 400 validation_failed', async () => {
    for (const url of ['/api/v1/credit-packages/%E0%A4%A', '/api/v1/accounts/%ED%A0%80/balance']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(expectError(res, 400, 'validation_failed')).toMatch(/%-encoding/);
    }
  });

  it('a 10,000-character path parameter is a 414 in the envelope', async () => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/credit-packages/${'a'.repeat(10_000)}` });
    expectError(res, 414, 'validation_failed');
    // A user id of the longest allowed length (255) still reaches the route.
    const ok = await t.app.inject({ method: 'GET', url: `/api/v1/accounts/${'u'.repeat(255)}/balance` });
    expectError(ok, 401, 'unauthorized');
  });

  it('control bytes in a header are a 400 in the envelope, on a real socket', async () => {
    const res = await raw(port, ['GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n']);
    expectError(res, 400, 'validation_failed');
  });

  it('a malformed request line is a 400 in the envelope', async () => {
    const res = await raw(port, ['NOT HTTP AT ALL\r\n\r\n']);
    expectError(res, 400, 'validation_failed');
  });

  it('headers over the limit are a 431 in the envelope', async () => {
    const res = await raw(port, [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    expectError(res, 431, 'validation_failed');
  });

  it('a body trickled byte by byte is cut off after REQUEST_TIMEOUT_MS with a 408 request_timeout', async () => {
    const head =
      'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n';
    const res = await raw(port, [head, ...'{"id":"evt_slow","padding":"'.split('')], 100);
    expect(expectError(res, 408, 'request_timeout')).toMatch(/REQUEST_TIMEOUT_MS/);
    expect(res.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(res.ms).toBeLessThan(TIMEOUT_MS + 1_500);
  });

  it('headers that never finish are cut off the same way', async () => {
    const res = await raw(port, ['GET /healthz HTTP/1.1\r\n', ...'Host: example.test'.split('')], 100);
    expectError(res, 408, 'request_timeout');
  });
});
