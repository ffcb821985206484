import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:https';

/**
 * The bench's webhook receiver: an https server (the service sends only https in production) answering 204 to
 * every POST, without verifying (receivers' costs are not the service's); plain http on a second port answers
 * GET /count with the requests so far. Listens on 127.0.0.1 only. Arguments: port, status port, certificate
 * file, key file.
 */
const [port, statusPort, certFile, keyFile] = process.argv.slice(2);
let received = 0;
const server = createServer(
  { cert: readFileSync(certFile as string), key: readFileSync(keyFile as string) },
  (req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      res.writeHead(204).end();
    });
  },
);
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1');
const status = createHttpServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received }));
});
status.listen(Number(statusPort), '127.0.0.1');
process.on('SIGTERM', () => {
  server.closeAllConnections();
  status.closeAllConnections();
  server.close(() => status.close(() => process.exit(0)));
});
