import { randomBytes } from 'node:crypto';

/** Opaque, prefixed ids (`pkg_…`, `pur_…`, `key_…`): 16 random bytes, URL-safe. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}
