import { type TSchema, Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { ok } from './openapi.ts';

/**
 * CSV answers (CONTRACT section 15): a list answers `text/csv; charset=utf-8` instead of its JSON page when the
 * request's Accept prefers text/csv. Asked for by `Accept: text/csv` (alone, or before application/json).
 */
export function wantsCsv(request: FastifyRequest): boolean {
  const accept = request.headers.accept;
  if (!accept) return false;
  let best: { type: string; q: number } | undefined;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (!Number.isFinite(q) || q <= 0) continue;
    if (type !== 'text/csv' && type !== 'application/json') continue;
    if (!best || q > best.q) best = { type, q };
  }
  return best?.type === 'text/csv';
}

export const LEDGER_CSV_COLUMNS = [
  'id',
  'createdAt',
  'userId',
  'type',
  'amount',
  'balanceAfter',
  'source',
  'purchaseId',
  'holdId',
  'reversesEntryId',
  'reason',
  'idempotencyKey',
  'metadata',
] as const;

export const LEDGER_CSV =
  `With \`Accept: text/csv\`: every matching entry (no paging), oldest first, as an attachment. Columns: ` +
  `${LEDGER_CSV_COLUMNS.join(',')} (metadata as JSON). RFC 4180 quoting; a text cell beginning with =, +, -, @, ` +
  'a tab or a carriage return starts with an apostrophe.';

/**
 * A 200 that is the JSON envelope around `data`, or CSV when asked for: both in the OpenAPI document, as the
 * response's `application/json` and `text/csv` content.
 */
export function okOrCsv<T extends TSchema>(data: T, description: string, csvDescription: string) {
  // The envelope's schema carries the response's description, as ok()'s do, so the document shares it.
  const both = `${description}. ${csvDescription}`;
  return {
    description: both,
    content: {
      'application/json': { schema: ok(data, both) },
      // The CSV's description is the response's (above), said once.
      'text/csv': { schema: Type.String() },
    },
  };
}
