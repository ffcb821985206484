import { badRequest } from '../errors.ts';

/**
 * Text the service is given must be storable as Postgres text and jsonb: well-formed UTF-16 (no lone
 * surrogate, which Postgres refuses or silently turns into U+FFFD) and no NUL (which it refuses).
 * Checked once at the edge, so no query ever sees such a string.
 */

/** How deep a JSON body may nest. Real bodies nest a few levels; recursion over deeper ones risks the stack. */
export const MAX_JSON_DEPTH = 64;

export const isWellFormedText = (s: string): boolean => s.isWellFormed() && !s.includes('\0');

export interface IllFormed {
  /** Where, as the envelope names fields: `body.metadata.note`, `querystring.cursor`. */
  field: string;
  problem: 'text' | 'depth';
}

const fieldName = (parent: string, key: string | number) =>
  typeof key === 'number' ? `${parent}[${key}]` : `${parent}.${key}`;

/**
 * The first string (value or key) in `value` that is not well-formed text, or the first place it nests
 * deeper than `maxDepth`. Iterative: a body nested 100,000 levels deep costs a loop, not the stack.
 */
export function findIllFormed(
  value: unknown,
  root: string,
  maxDepth = MAX_JSON_DEPTH,
): IllFormed | undefined {
  if (typeof value === 'string')
    return isWellFormedText(value) ? undefined : { field: root, problem: 'text' };
  // Only containers are pushed; scalars are checked where they are met (a flat object of 100,000 keys
  // allocates nothing), and a field's name is built only when it is reported.
  const stack: { value: object; field: string; depth: number }[] = [];
  const visit = (v: unknown, field: string, depth: number): IllFormed | undefined => {
    if (typeof v === 'string') return isWellFormedText(v) ? undefined : { field, problem: 'text' };
    if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return undefined;
    if (depth >= maxDepth) return { field, problem: 'depth' };
    stack.push({ value: v, field, depth });
    return undefined;
  };
  const first = visit(value, root, 0);
  if (first) return first;
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { value: node, field, depth } = item;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const child = node[i];
        if (
          typeof child === 'string' ? !isWellFormedText(child) : child !== null && typeof child === 'object'
        ) {
          const found = visit(child, fieldName(field, i), depth + 1);
          if (found) return found;
        }
      }
      continue;
    }
    const keys = Object.keys(node);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (!isWellFormedText(key)) return { field: fieldName(field, key.toWellFormed()), problem: 'text' };
      const child = (node as Record<string, unknown>)[key];
      if (
        typeof child === 'string' ? !isWellFormedText(child) : child !== null && typeof child === 'object'
      ) {
        const found = visit(child, fieldName(field, key), depth + 1);
        if (found) return found;
      }
    }
  }
  return undefined;
}

/** A message naming the field, for a 400 `validation_failed`. */
export function describeIllFormed(found: IllFormed, maxDepth = MAX_JSON_DEPTH): string {
  // The field name itself may hold the bad text (a metadata key): show it storable.
  const shown = found.field.replaceAll('\0', '\\u0000').toWellFormed();
  const field = shown.length > 200 ? `${shown.slice(0, 200).toWellFormed()}…` : shown;
  return found.problem === 'depth'
    ? `${field} is nested more than ${maxDepth} levels deep`
    : `${field} must be well-formed Unicode text without NUL (\\u0000) characters`;
}

const storableText = (s: string) => (isWellFormedText(s) ? s : s.replaceAll('\0', '\uFFFD').toWellFormed());

/**
 * A copy of a provider's JSON in which every string and key can be stored in Postgres: NUL and lone
 * surrogates become U+FFFD. Strings that were fine are kept as they are (the same object when nothing
 * changed). Iterative, so depth is no risk here; callers bound it separately.
 */
export function toStorable<T>(value: T): T {
  if (findIllFormed(value, '', Number.POSITIVE_INFINITY) === undefined) return value;
  if (typeof value === 'string') return storableText(value) as T;
  const copy = (v: unknown): unknown => {
    if (typeof v === 'string') return storableText(v);
    if (Array.isArray(v)) return [...v];
    if (v && typeof v === 'object') return { ...(v as Record<string, unknown>) };
    return v;
  };
  const root = copy(value);
  const stack: unknown[] = [root];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        node[i] = copy(node[i]);
        if (node[i] && typeof node[i] === 'object') stack.push(node[i]);
      }
      continue;
    }
    const obj = node as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      const child = copy(obj[key]);
      const fixedKey = storableText(key);
      if (fixedKey !== key) delete obj[key];
      // defineProperty, not assignment: a "__proto__" key from JSON.parse stays a plain key.
      Object.defineProperty(obj, fixedKey, {
        value: child,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      if (child && typeof child === 'object') stack.push(child);
    }
  }
  return root as T;
}

/** How deep `value` nests (a scalar is 0), counting no further than `limit + 1`. Iterative. */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [v, depth] = item;
    if (v === null || typeof v !== 'object') continue;
    const d = depth + 1;
    if (d > deepest) deepest = d;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d]);
  }
  return deepest;
}

/**
 * A provider's verified event as it can be stored: ill-formed text made storable (`toStorable`), so a
 * valid delivery is never answered 5xx (the provider would retry it for ever). 400 when it nests deeper
 * than MAX_JSON_DEPTH: no real event does, and storing it would risk the stack.
 */
export function storableProviderEvent<T>(event: T): T {
  if (jsonDepth(event) > MAX_JSON_DEPTH) {
    throw badRequest('request.too_deep', { field: 'body', depth: MAX_JSON_DEPTH });
  }
  return toStorable(event);
}
