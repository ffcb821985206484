import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createSigner } from 'fast-jwt';
import { ConfigError, DEV_JWT_SECRET, loadConfig } from '../config.ts';

const USAGE = `Usage: npm run token -- [--sub <user id>] [--roles <role,role>] [--ttl <seconds>] [--private-key <file>]

Prints a JWT the service accepts, signed with what it verifies with:
  JWT_SECRET set (or unset outside production: the development secret): HS256 with it;
  JWT_PUBLIC_KEY set: RS256/ES256 with the matching private key given as --private-key (checked against it).
In production it says on stderr what it signed with; an identity provider's tokens work the same way
(docs/authentication.md).
  --sub          the user id the token speaks for (default: user_1)
  --roles        comma-separated roles: admin, ops (default: none)
  --ttl          lifetime in seconds, a positive integer (default: 3600)
  --private-key  a PEM private key file, when the service verifies with JWT_PUBLIC_KEY
  --help         this text`;

/** A usage error: one line on stderr, exit code 2 (the shell's convention for bad arguments). */
function usageError(message: string): never {
  console.error(`npm run token: ${message} (--help for usage)`);
  process.exit(2);
}

/** A refusal for a reason of the configuration: one line naming the fix, exit code 1. */
function refuse(message: string): never {
  console.error(`npm run token: ${message}`);
  process.exit(1);
}

const ttlMessage = (given: string) => `--ttl must be a positive whole number of seconds, got "${given}"`;

const argv = process.argv.slice(2);
// parseArgs reads `--ttl -5` as a missing value ("argument is ambiguous"): say what is wrong with it.
const ttlAt = argv.indexOf('--ttl');
const afterTtl = ttlAt >= 0 ? argv[ttlAt + 1] : undefined;
if (afterTtl !== undefined && /^-\d/.test(afterTtl)) usageError(ttlMessage(afterTtl));
let values: { sub?: string; roles?: string; ttl?: string; help?: boolean; 'private-key'?: string };
try {
  ({ values } = parseArgs({
    args: argv,
    options: {
      sub: { type: 'string', default: 'user_1' },
      roles: { type: 'string', default: '' },
      ttl: { type: 'string', default: '3600' },
      'private-key': { type: 'string' },
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
  // It never connects: no DATABASE_URL needed, even in production.
  config = loadConfig(process.env, { needsDatabase: false });
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  refuse(err.message);
}
const production = config.nodeEnv === 'production';
const roles = (values.roles ?? '')
  .split(',')
  .map((r) => r.trim())
  .filter(Boolean);

/** The key and algorithm the service verifies, or a refusal saying what is missing. */
function signingKey(): {
  key: string;
  algorithm: 'HS256' | 'RS256' | 'ES256' | 'ES384' | 'ES512';
  what: string;
} {
  if (config.jwt.secret) {
    const dev = config.jwt.secret === DEV_JWT_SECRET;
    return {
      key: config.jwt.secret,
      algorithm: 'HS256',
      what: dev ? 'the development secret' : 'JWT_SECRET (HS256)',
    };
  }
  const file = values['private-key'];
  if (!file) {
    refuse(
      'the service verifies tokens with JWT_PUBLIC_KEY, so only the holder of its private key can sign: ' +
        'pass --private-key <file>, or get the token from your identity provider (docs/authentication.md)',
    );
  }
  let pem: string;
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    pem = readFileSync(file, 'utf8');
    privateKey = createPrivateKey(pem);
  } catch (err) {
    refuse(
      `--private-key ${file} is not a readable PEM private key (${(err as Error).message.split('\n')[0]})`,
    );
  }
  const derived = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  let configured: Buffer;
  try {
    configured = createPublicKey(config.jwt.publicKey as string).export({ type: 'spki', format: 'der' });
  } catch {
    refuse('JWT_PUBLIC_KEY is not a readable PEM public key');
  }
  if (!derived.equals(configured)) {
    refuse(`--private-key ${file} does not match JWT_PUBLIC_KEY: the service would refuse its tokens`);
  }
  const type = privateKey.asymmetricKeyType;
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  const algorithm =
    type === 'rsa'
      ? 'RS256'
      : curve === 'secp384r1'
        ? 'ES384'
        : curve === 'secp521r1'
          ? 'ES512'
          : type === 'ec'
            ? 'ES256'
            : refuse(`--private-key ${file} is a ${type} key; RSA or EC (P-256, P-384, P-521) is needed`);
  return { key: pem, algorithm, what: `the private key in ${file} (${algorithm}, matches JWT_PUBLIC_KEY)` };
}

const { key, algorithm, what } = signingKey();
const sign = createSigner({
  key,
  algorithm,
  expiresIn: Number(ttl) * 1000,
  ...(config.jwt.issuer ? { iss: config.jwt.issuer } : {}),
  ...(config.jwt.audience ? { aud: config.jwt.audience } : {}),
});
if (production) {
  // On stderr, so `TOKEN=$(npm run -s token ...)` still captures only the token.
  console.error(
    `npm run token: signed with ${what} for NODE_ENV=production: sub ${sub}, roles [${roles.join(', ')}], ` +
      `valid ${ttl} s; anyone holding it acts as that caller until it expires`,
  );
}
console.log(sign({ sub, ...(roles.length ? { roles } : {}) }));
