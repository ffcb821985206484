import { type Config, ConfigError } from './config.ts';

/** A Postgres URL as it can be shown: no password. */
export function hidePassword(url: string): string {
  return url.replace(/:[^:@/]+@/, ':***@');
}

/** What went wrong at start, in one line a person can act on (never a stack, never a password). */
export function describeStartError(err: unknown, config: Config | undefined, databaseUrl?: string): string {
  if (err instanceof ConfigError) return err.message;
  if (err === undefined || err === null) return 'a step of the start failed without giving a reason';
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' && e.message ? e.message : String(err);
  if (config && (code === 'EADDRINUSE' || code === 'EACCES')) {
    const where = `${config.host}:${config.port}`;
    return code === 'EADDRINUSE'
      ? `port ${config.port} is already in use on ${config.host} (another process listens on ${where}); stop it or set PORT`
      : `no permission to listen on ${where}; choose a PORT above 1023 or another HOST`;
  }
  if (code === 'EADDRNOTAVAIL' && config) return `HOST ${config.host} is not an address of this machine`;
  const db = databaseUrl ? new URL(databaseUrl) : undefined;
  const server = db ? `${db.hostname}:${db.port || 5432}` : 'the database server';
  if (code === '3D000' && db) {
    const name = decodeURIComponent(db.pathname.slice(1));
    const user = decodeURIComponent(db.username || 'postgres');
    return (
      `database "${name}" does not exist on ${server}; create it with ` +
      `\`createdb -h ${db.hostname} -p ${db.port || 5432} -U ${user} ${name}\` ` +
      `(or psql: create database "${name}"), or fix the database name in the URL`
    );
  }
  if (/unsupported startup parameter/i.test(message)) {
    return `${server} refused a connection setting (${message}): it is a pooler in transaction mode; set DATABASE_POOLER=transaction`;
  }
  if (code === '42P01') {
    return `${message} on ${server}: the database has no schema yet; run npm run db:migrate (or start the service once)`;
  }
  if (code === '28P01' || code === '28000') return `Postgres at ${server} refused the login: ${message}`;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT') {
    return `cannot reach Postgres at ${server} (${code}); is it running, and is DATABASE_URL right?`;
  }
  if (/timeout exceeded when trying to connect|Connection terminated/i.test(message)) {
    return `Postgres at ${server} did not answer: ${message}`;
  }
  return message.split('\n')[0] ?? message;
}

/**
 * What a start says about settings an operator should look at (logged as warnings): what production serves
 * to anyone, and proxies it trusts or not.
 */
export function startWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.nodeEnv !== 'production') return warnings;
  if (!config.metricsToken) {
    warnings.push(
      '/metrics is public: anyone who can reach this port reads it; set METRICS_TOKEN to require a bearer token',
    );
  }
  if (config.docsEnabled) {
    warnings.push('/docs and /docs/json are public (API documentation); DOCS_ENABLED=false turns them off');
  }
  if (config.trustProxy === true) {
    warnings.push(
      'TRUST_PROXY=true trusts X-Forwarded-For from any address: reach the service only through your load balancer, or name its addresses',
    );
  }
  return warnings;
}
