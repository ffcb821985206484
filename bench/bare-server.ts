import Fastify from 'fastify';
import { BalanceSchema, Envelope } from '../src/http/schemas.ts';

/**
 * The bench's baseline: a bare Fastify route answering a balance-shaped envelope, serialized with the same
 * schema as the real route, with no auth, no database and no plugins. Listens on 127.0.0.1 only.
 */
const port = Number(process.argv[2]);
const app = Fastify({ logger: false });
app.get('/bare', { schema: { response: { 200: Envelope(BalanceSchema) } } }, async () => ({
  isSuccess: true,
  statusCode: 200,
  data: { userId: 'bench_1', balance: 1000, available: 1000, held: 0, updatedAt: null, expiringSoon: [] },
  errors: [],
  timestamp: new Date().toISOString(),
}));
await app.listen({ port, host: '127.0.0.1' });
process.on('SIGTERM', () => {
  app.close().then(() => process.exit(0));
});
