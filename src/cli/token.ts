import { parseArgs } from 'node:util';
import { createSigner } from 'fast-jwt';
import { ConfigError, DEV_JWT_SECRET, loadConfig } from '../config.ts';

const USAGE = `Usage: npm run token -- [--sub <user id>] [--roles <role,role>] [--ttl <seconds>]

Prints a development JWT signed with JWT_SECRET (the development secret when unset).
  --sub    the user id the token speaks for (default: user_1)
  --roles  comma-separated roles, e.g. admin (default: none)
  --ttl    lifetime in seconds, a positive integer (default: 3600)
  --help   this text
Refuses to run with NODE_ENV=production.`;

/** A usage error: one line on stderr, exit code 2 (the shell's convention for bad arguments). */
function usageError(message: string): never {
  console.error(`npm run token: ${message} (--help for usage)`);
  process.exit(2);
}

const ttlMessage = (given: string) => `--ttl must be a positive whole number of seconds, got "${given}"`;

/** `npm run token -- --sub user_1 --roles admin`: a development JWT signed with the development secret. */
const argv = process.argv.slice(2);
// parseArgs reads `--ttl -5` as a missing value ("argument is ambiguous"): say what is wrong with it.
const ttlAt = argv.indexOf('--ttl');
const afterTtl = ttlAt >= 0 ? argv[ttlAt + 1] : undefined;
if (afterTtl !== undefined && /^-\d/.test(afterTtl)) usageError(ttlMessage(afterTtl));
let values: { sub?: string; roles?: string; ttl?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    args: argv,
    options: {
      sub: { type: 'string', default: 'user_1' },
      roles: { type: 'string', default: '' },
      ttl: { type: 'string', default: '3600' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  usageError((err as Error).message.split('\n')[0] ?? 'invalid arguments');
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const ttl = values.ttl ?? '3600';
if (!/^\d+$/.test(ttl) || Number(ttl) <= 0 || !Number.isSafeInteger(Number(ttl) * 1000)) {
  usageError(ttlMessage(ttl));
}
const sub = values.sub ?? 'user_1';
if (sub.trim() === '') usageError('--sub must not be empty');

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}
if (config.nodeEnv === 'production') {
  console.error('npm run token refuses to run with NODE_ENV=production');
  process.exit(1);
}
const roles = (values.roles ?? '')
  .split(',')
  .map((r) => r.trim())
  .filter(Boolean);
const sign = createSigner({
  key: config.jwt.secret ?? DEV_JWT_SECRET,
  algorithm: 'HS256',
  expiresIn: Number(ttl) * 1000,
  ...(config.jwt.issuer ? { iss: config.jwt.issuer } : {}),
  ...(config.jwt.audience ? { aud: config.jwt.audience } : {}),
});
console.log(sign({ sub, ...(roles.length ? { roles } : {}) }));
