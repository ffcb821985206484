import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import {
  findActiveKeyByHash,
  findApiKey,
  insertApiKey,
  listApiKeys,
  revokeApiKey,
  touchApiKey,
} from './api-keys.repository.ts';
import type { Db } from '../../db/database.ts';
import type { ApiKeysTable } from './api-keys.tables.ts';
import { conflict, notFound } from '../../errors.ts';
import type { Scope } from '../../http/schemas.ts';
import { newId } from '../../lib/ids.ts';
import { decodeCursor, toPage } from '../../lib/pagination.ts';

/** API keys start with this, so a bearer value is told apart from a JWT without trying both. */
export const API_KEY_PREFIX = 'ck_';

const LEGACY_KEY = /^ck_[A-Za-z0-9_-]{43}$/;
const CHECKSUMMED_KEY = /^ck_[A-Za-z0-9_-]{49}$/;

/** CRC-32 of everything before it, base64url (6 characters): catches typos and invented keys, not forgeries. */
const checksumOf = (keyWithoutChecksum: string) => {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(keyWithoutChecksum));
  return crc.toString('base64url');
};

/**
 * Whether `key` is shaped like a key this service issues, decided without the database: `ck_` + 43
 * random base64url characters + a 6-character checksum. Keys issued before the checksum (`ck_` + 43
 * characters, no checksum) are still accepted as plausible and looked up.
 */
export function isPlausibleApiKey(key: string): boolean {
  if (LEGACY_KEY.test(key)) return true;
  return CHECKSUMMED_KEY.test(key) && checksumOf(key.slice(0, -6)) === key.slice(-6);
}

export const hashApiKey = (key: string) => createHash('sha256').update(key).digest('hex');

type KeyRow = Omit<ApiKeysTable, 'created_at'> & { created_at: Date };

const toListed = (row: KeyRow) => ({
  id: row.id,
  name: row.name,
  scopes: row.scopes as Scope[],
  prefix: row.prefix,
  createdAt: row.created_at.toISOString(),
  lastUsedAt: row.last_used_at?.toISOString() ?? null,
  revokedAt: row.revoked_at?.toISOString() ?? null,
});

/**
 * How long a verified key is trusted without asking the database. A revocation through this process takes
 * effect at once (the cache is cleared); one made through another replica takes up to this long there.
 */
export const API_KEY_CACHE_TTL_MS = 5_000;
const API_KEY_CACHE_MAX = 10_000;
const TOUCH_EVERY_MS = 60_000;

interface CachedKey {
  id: string;
  scopes: Scope[];
  until: number;
  touchedAt: number;
}

export function createApiKeysService(db: Db, options: { cacheTtlMs?: number } = {}) {
  const ttl = options.cacheTtlMs ?? API_KEY_CACHE_TTL_MS;
  // Keyed by the key's hash, never the key. Only valid keys are cached, so random keys cannot evict them.
  const cache = new Map<string, CachedKey>();
  // Concurrent requests with one uncached key share one lookup.
  const pending = new Map<string, Promise<CachedKey | null>>();
  // Bumped by every revocation: a lookup that started before it must not cache what it read.
  let generation = 0;

  const touch = (entry: CachedKey, now: number) => {
    if (now - entry.touchedAt <= TOUCH_EVERY_MS) return;
    entry.touchedAt = now;
    touchApiKey(db, entry.id).catch(() => {});
  };

  async function lookup(hash: string): Promise<CachedKey | null> {
    const seen = generation;
    const row = await findActiveKeyByHash(db, hash);
    if (!row) {
      cache.delete(hash); // revoked through another replica: no longer "known" either
      return null;
    }
    const now = Date.now();
    const entry: CachedKey = {
      id: row.id,
      scopes: row.scopes as Scope[],
      until: now + ttl,
      touchedAt: row.last_used_at?.getTime() ?? 0,
    };
    touch(entry, now);
    if (ttl > 0 && seen === generation) {
      if (!cache.has(hash) && cache.size >= API_KEY_CACHE_MAX)
        cache.delete(cache.keys().next().value as string);
      cache.set(hash, entry);
    }
    return entry;
  }

  return {
    /**
     * Creates a key with 256 bits of entropy and a checksum (see isPlausibleApiKey); only its SHA-256 is
     * stored, the clear key is returned once.
     */
    async create(name: string, scopes: Scope[]) {
      const body = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
      const key = `${body}${checksumOf(body)}`;
      const row = await insertApiKey(db, {
        id: newId('key'),
        name,
        prefix: key.slice(0, API_KEY_PREFIX.length + 6),
        keyHash: hashApiKey(key),
        scopes: [...new Set(scopes)],
      });
      return {
        id: row.id,
        name: row.name,
        scopes: row.scopes as Scope[],
        key,
        createdAt: row.created_at.toISOString(),
      };
    },

    async list(limit: number, cursor?: string) {
      const after = decodeCursor(cursor, ['timestamp', 'string']) as [string, string] | undefined;
      const rows = await listApiKeys(db, limit, after && { createdAt: after[0], id: after[1] });
      return toPage(rows, limit, toListed, (r) => [r.created_at_exact, r.id]);
    },

    async revoke(id: string) {
      const row = await revokeApiKey(db, id);
      generation++;
      pending.clear();
      for (const [hash, entry] of cache) if (entry.id === id) cache.delete(hash);
      if (row) return toListed(row);
      const existing = await findApiKey(db, id);
      if (!existing) throw notFound('api_key.not_found');
      throw conflict('api_key.already_revoked');
    },

    /**
     * True when this process verified `key` as valid recently (it is in the cache, even past its TTL): such a
     * key may still be looked up from an address over AUTH_FAILURES_PER_MINUTE. No database work.
     */
    isKnown(key: string): boolean {
      return cache.has(hashApiKey(key));
    },

    /** The key's id and scopes when it is valid and not revoked; null otherwise. Cached (see API_KEY_CACHE_TTL_MS). */
    async verify(key: string): Promise<{ id: string; scopes: Scope[] } | null> {
      const hash = hashApiKey(key);
      const now = Date.now();
      let entry = cache.get(hash) ?? null;
      // Expired: looked up again. The entry stays (see isKnown) until the lookup answers.
      if (entry && entry.until <= now) entry = null;
      if (entry) {
        touch(entry, now);
      } else {
        let inFlight = pending.get(hash);
        if (!inFlight) {
          const started = lookup(hash).finally(() => {
            if (pending.get(hash) === started) pending.delete(hash);
          });
          inFlight = started;
          pending.set(hash, started);
        }
        entry = await inFlight;
      }
      return entry && { id: entry.id, scopes: entry.scopes };
    },
  };
}
export type ApiKeysService = ReturnType<typeof createApiKeysService>;
