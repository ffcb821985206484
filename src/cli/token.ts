import { parseArgs } from 'node:util';
import { createSigner } from 'fast-jwt';
import { DEV_JWT_SECRET, loadConfig } from '../config.ts';

/** `npm run token -- --sub user_1 --roles admin`: a development JWT signed with the development secret. */
const config = loadConfig();
if (config.nodeEnv === 'production') {
  console.error('npm run token refuses to run with NODE_ENV=production');
  process.exit(1);
}
const { values } = parseArgs({
  options: {
    sub: { type: 'string', default: 'user_1' },
    roles: { type: 'string', default: '' },
    ttl: { type: 'string', default: '3600', description: 'seconds' },
  },
});
const roles = (values.roles ?? '')
  .split(',')
  .map((r) => r.trim())
  .filter(Boolean);
const sign = createSigner({
  key: config.jwt.secret ?? DEV_JWT_SECRET,
  algorithm: 'HS256',
  expiresIn: Number(values.ttl) * 1000,
  ...(config.jwt.issuer ? { iss: config.jwt.issuer } : {}),
  ...(config.jwt.audience ? { aud: config.jwt.audience } : {}),
});
console.log(sign({ sub: values.sub, ...(roles.length ? { roles } : {}) }));
