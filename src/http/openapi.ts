import { type TObject, type TSchema, Type } from '@sinclair/typebox';
import { Document, isAlias, isMap, isScalar, isSeq } from 'yaml';
import { ERROR_STATUS, type ErrorCode } from '../errors.ts';
import { Envelope, Timestamp } from './schemas.ts';

/**
 * The OpenAPI conventions every route follows (docs/api-conventions.md): one-line helpers for responses
 * and errors, and `finishDocument`, which adds what is the same on every operation (response headers,
 * optional parameters that have defaults) to the generated document.
 */

/** Error statuses the API answers, each with one shared component schema. */
export type ErrorStatus = 400 | 401 | 402 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 503;

const ERROR_DOCS: Record<ErrorStatus, { id: string; description: string; example: string }> = {
  400: {
    id: 'ValidationError',
    description:
      'The request is invalid: body, parameters or headers fail the schema (the message names the field), or the JSON is malformed',
    example: 'body.amount must be integer',
  },
  401: {
    id: 'UnauthorizedError',
    description: 'Missing, invalid, expired or revoked credentials',
    example: 'Missing or invalid credentials',
  },
  402: {
    id: 'InsufficientCreditsError',
    description: 'The debit is larger than the available balance; nothing was written',
    example: 'Insufficient credits: available 3 (balance 8, 5 of it held), requested 5',
  },
  403: {
    id: 'ForbiddenError',
    description: "Authenticated, but lacking the role or scope, or another user's resource",
    example: 'Not allowed to access this resource',
  },
  404: {
    id: 'NotFoundError',
    description: 'The resource (or the route) does not exist',
    example: 'Credit package not found',
  },
  409: {
    id: 'ConflictError',
    description:
      'The resource exists or cannot change in its current state (`conflict`), or an Idempotency-Key was reused with different parameters (`idempotency_key_reused`)',
    example: 'Credit package is not active',
  },
  413: {
    id: 'PayloadTooLargeError',
    description: 'The body is larger than the limit (1 MiB)',
    example: 'Request body is larger than the limit',
  },
  415: {
    id: 'UnsupportedMediaTypeError',
    description: 'The body is not application/json',
    example: 'Unsupported Content-Type; send application/json',
  },
  429: {
    id: 'RateLimitedError',
    description: 'Too many requests; `Retry-After` says how many seconds to wait',
    example: 'Too many requests; retry in 42 s',
  },
  500: {
    id: 'InternalError',
    description: 'An unexpected failure; the body never carries internals',
    example: 'Internal server error',
  },
  503: {
    id: 'ServiceUnavailableError',
    description:
      'The database is unreachable or busy, a provider is not configured or unreachable, or the service is overloaded; retry later',
    example: 'The database is unavailable',
  },
};

function codesOf(status: ErrorStatus): ErrorCode[] {
  return (Object.keys(ERROR_STATUS) as ErrorCode[]).filter((code) => ERROR_STATUS[code] === status);
}

/** One error-envelope schema per status, registered as components (`#/components/schemas/NotFoundError`). */
export const ERROR_SCHEMAS = Object.fromEntries(
  (Object.keys(ERROR_DOCS) as unknown as ErrorStatus[]).map((status) => {
    const docs = ERROR_DOCS[status];
    const codes = codesOf(Number(status) as ErrorStatus);
    const schema = Type.Object(
      {
        isSuccess: Type.Literal(false),
        statusCode: Type.Unsafe<number>({ type: 'integer', enum: [Number(status)] }),
        code: Type.Unsafe<string>({
          type: 'string',
          enum: codes,
          description: 'Machine-readable error code',
        }),
        data: Type.Null(),
        errors: Type.Array(Type.String(), {
          description: 'Human-readable messages, in the language `Accept-Language` asked for (en, ru)',
        }),
        timestamp: Timestamp,
      },
      {
        $id: docs.id,
        description: docs.description,
        example: {
          isSuccess: false,
          statusCode: Number(status),
          code: codes[0],
          data: null,
          errors: [docs.example],
          timestamp: '2026-05-22T16:11:27.463Z',
        },
      },
    );
    return [status, schema];
  }),
) as unknown as Record<ErrorStatus, TObject>;

/** Statuses every /api/v1 route can answer whatever it does. */
const ALWAYS: ErrorStatus[] = [400, 429, 500, 503];

/**
 * Error responses of a route: the given statuses plus 400, 429, 500 and 503, each a `$ref` to its shared
 * component. A status given as `[status, description]` gets a route-specific description.
 * Spread into `response`: `response: { 200: ok(X, '...'), ...errors(401, 404) }`.
 */
export function errors(...statuses: (ErrorStatus | [ErrorStatus, string])[]): Record<string, TSchema> {
  const out: Record<string, TSchema> = {};
  const given = new Map<ErrorStatus, string | undefined>();
  for (const s of ALWAYS) given.set(s, undefined);
  for (const s of statuses) {
    if (Array.isArray(s)) given.set(s[0], s[1]);
    else given.set(s, given.get(s));
  }
  for (const [status, description] of [...given].sort((a, b) => a[0] - b[0])) {
    out[status] = Type.Ref(ERROR_SCHEMAS[status], description ? { description } : {});
  }
  return out;
}

/** Errors of routes outside /api/v1 (webhooks, health): no rate limit, so no 429. */
export function errorsWithoutRateLimit(...statuses: (ErrorStatus | [ErrorStatus, string])[]) {
  const out = errors(...statuses);
  if (!statuses.some((s) => (Array.isArray(s) ? s[0] : s) === 429)) delete out[429];
  return out;
}

/** Response headers, declared once in `components.headers` and referenced by the responses that send them. */
const HEADER_DOCS = {
  'x-request-id': {
    id: 'RequestId',
    description:
      "The request's id (the caller's own `x-request-id` when it sent a sane one); quote it when reporting a problem",
    schema: { type: 'string' },
  },
  'Content-Language': {
    id: 'ContentLanguage',
    description: 'The language of the `errors` messages: `en` or `ru`, as `Accept-Language` asked',
    schema: { type: 'string', enum: ['en', 'ru'] },
  },
  'Retry-After': {
    id: 'RetryAfter',
    description: 'Seconds to wait before retrying',
    schema: { type: 'integer' },
  },
  'Idempotent-Replayed': {
    id: 'IdempotentReplayed',
    description:
      '`true` when this answer is the stored result of an earlier request with the same Idempotency-Key',
    schema: { type: 'string', enum: ['true'] },
  },
} as const;
export type ResponseHeader = keyof typeof HEADER_DOCS;

/** On every response. */
const COMMON_HEADERS: ResponseHeader[] = ['x-request-id', 'Content-Language'];

/**
 * A success response: the envelope around `data`, with a real description, and the headers it declares
 * besides the common ones (e.g. `['Idempotent-Replayed']`).
 */
export function ok<T extends TSchema>(data: T, description: string, headers: ResponseHeader[] = []) {
  const schema = Envelope(data, description);
  if (headers.length > 0) (schema as Record<string, unknown>)['x-headers'] = headers;
  return schema;
}

type Json = Record<string, unknown>;

/** Declared on every operation, so generated clients can set it with its type. */
const ACCEPT_LANGUAGE = {
  in: 'header',
  name: 'Accept-Language',
  required: false,
  description: 'The language of error messages: `en` (the default) or `ru`; q-values are honoured',
  // Swagger UI pre-fills a parameter with its example: `en`, so a try-it call answers in the default language.
  schema: { type: 'string', example: 'en' },
};
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

const headerRefs = (names: readonly ResponseHeader[]) =>
  Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${HEADER_DOCS[name].id}` }]));

/**
 * @fastify/swagger `transformObject`: applies the conventions the route schemas cannot say themselves.
 * - every response declares `x-request-id` and `Content-Language`; 429 declares `Retry-After`;
 *   a success response's `x-headers` (from `ok(..., headers)`) are declared too;
 * - a query parameter with a default is optional (the server fills the default);
 * - every operation takes an optional `Accept-Language` header.
 */
export function finishDocument({ openapiObject }: { openapiObject: Json }): Json {
  const components = (openapiObject.components ?? {}) as Json;
  components.headers = Object.fromEntries(
    Object.values(HEADER_DOCS).map((h) => [h.id, { description: h.description, schema: { ...h.schema } }]),
  );
  components.parameters = { ...((components.parameters as Json) ?? {}), AcceptLanguage: ACCEPT_LANGUAGE };
  openapiObject.components = components;
  const sharedResponses: Record<string, Json> = {};
  const successEnvelope = new SuccessEnvelopes();
  const paths = (openapiObject.paths ?? {}) as Record<string, Record<string, Json>>;
  for (const item of Object.values(paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      for (const param of (op.parameters ?? []) as Json[]) {
        const schema = param.schema as Json | undefined;
        if (param.in === 'query' && schema && schema.default !== undefined) param.required = false;
      }
      const parameters = (op.parameters ?? []) as Json[];
      op.parameters = [...parameters, { $ref: '#/components/parameters/AcceptLanguage' }];
      const responses = (op.responses ?? {}) as Record<string, Json>;
      for (const [status, response] of Object.entries(responses)) {
        const content = response.content as Record<string, { schema?: Json }> | undefined;
        const schema = content?.['application/json']?.schema;
        const own = (schema?.['x-headers'] ?? []) as ResponseHeader[];
        if (content && schema) {
          // A copy: the converted schema may share objects with the route's own schema.
          const { 'x-headers': _, ...rest } = schema;
          const shared = successEnvelope.refer(rest, response.description);
          content['application/json'] = { ...content['application/json'], schema: shared ?? rest };
        }
        const retry: ResponseHeader[] = status === '429' ? ['Retry-After'] : [];
        response.headers = headerRefs([...COMMON_HEADERS, ...retry, ...own]);
        const shared = sharedErrorResponse(status, response);
        if (shared) {
          sharedResponses[shared] = response;
          responses[status] = { $ref: `#/components/responses/${shared}` };
        }
      }
    }
  }
  if (successEnvelope.schema) {
    const schemas = (components.schemas ?? {}) as Json;
    components.schemas = { ...schemas, [SUCCESS_ENVELOPE]: successEnvelope.schema };
  }
  collapseLiteralUnions(openapiObject);
  referNamedSchemas(paths, components);
  shareProperties(paths, components);
  shareParameters(paths, components);
  // Sorted by status, whatever order the operations used them in.
  const sorted = Object.entries(ERROR_DOCS).filter(([, d]) => sharedResponses[d.id]);
  components.responses = Object.fromEntries(sorted.map(([, d]) => [d.id, sharedResponses[d.id]]));
  shareRepeatedResponses(paths, components.responses as Record<string, Json>);
  if (Object.keys(components.responses as Json).length === 0) delete components.responses;
  return openapiObject;
}

/**
 * A response written the same way on two operations or more (`404 No such package`, a page of ledger entries
 * with its CSV) is declared once in `components.responses`, named after the start of its description
 * (`NoSuchPackage`), and each operation refers to it. Names do not depend on the order of the routes.
 */
function shareRepeatedResponses(
  paths: Record<string, Record<string, Json>>,
  shared: Record<string, Json>,
): void {
  const ops = Object.values(paths).flatMap((item) => METHODS.flatMap((m) => (item[m] ? [item[m]] : [])));
  const uses = new Map<string, { response: Json; status: string; count: number }>();
  for (const op of ops) {
    for (const [status, response] of Object.entries((op.responses ?? {}) as Record<string, Json>)) {
      if (response.$ref) continue;
      const key = `${status} ${JSON.stringify(response)}`;
      const seen = uses.get(key);
      if (seen) seen.count++;
      else uses.set(key, { response, status, count: 1 });
    }
  }
  const names = new Map<string, string>();
  const repeated = [...uses.entries()].filter(([, u]) => u.count > 1).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [key, { response, status }] of repeated) {
    const words = String(response.description ?? '')
      .split(/[.;:(]/)[0]
      ?.replace(/[^A-Za-z0-9 ]/g, ' ')
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 6)
      .map((w) => w[0]?.toUpperCase() + w.slice(1));
    let name = words?.join('') || `Response${status}`;
    if (shared[name]) name = `${name}${status}`;
    for (let i = 2; shared[name]; i++) name = `${name}${i}`;
    shared[name] = response;
    names.set(key, name);
  }
  for (const op of ops) {
    const responses = (op.responses ?? {}) as Record<string, Json>;
    for (const [status, response] of Object.entries(responses)) {
      const name = response.$ref ? undefined : names.get(`${status} ${JSON.stringify(response)}`);
      if (name) responses[status] = { $ref: `#/components/responses/${name}` };
    }
  }
}

/**
 * The name of the shared `components.responses` entry an error response is, or undefined: an error response
 * with its status's own description (not a route-specific one) is the same on every operation, so it is
 * declared once, with the name of its schema (`#/components/responses/NotFoundError`).
 */
function sharedErrorResponse(status: string, response: Json): string | undefined {
  const docs = ERROR_DOCS[Number(status) as ErrorStatus];
  if (!docs || response.description !== docs.description) return undefined;
  const content = response.content as Record<string, { schema?: Json }> | undefined;
  if (Object.keys(content ?? {}).join() !== 'application/json') return undefined;
  if (content?.['application/json']?.schema?.$ref !== `#/components/schemas/${docs.id}`) return undefined;
  return docs.id;
}

/**
 * A named schema (`components.schemas.LedgerEntry`) written out in full inside an operation is referred to
 * instead: a response given as `content` (a JSON and a CSV answer, say) reaches @fastify/swagger with its
 * schemas inlined, `$id` and all. Equal means equal as JSON, leaving `$id` aside.
 */
function referNamedSchemas(paths: Record<string, Record<string, Json>>, components: Json): void {
  const schemas = (components.schemas ?? {}) as Record<string, Json>;
  const keyOf = (schema: Json) => {
    const { $id: _, ...rest } = schema;
    return JSON.stringify(rest);
  };
  const named = new Map<string, string>();
  for (const [name, schema] of Object.entries(schemas)) {
    if (isJson(schema) && schema.type === 'object') named.set(keyOf(schema), name);
  }
  if (named.size === 0) return;
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (!isJson(value)) return value;
    const name = value.type === 'object' ? named.get(keyOf(value)) : undefined;
    if (name) return { $ref: `#/components/schemas/${name}` };
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
  };
  for (const item of Object.values(paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (op) item[method] = walk(op) as Json;
    }
  }
}

const SUCCESS_ENVELOPE = 'SuccessEnvelope';
const ENVELOPE_KEYS = ['isSuccess', 'statusCode', 'data', 'errors', 'timestamp'].sort().join();
const isJson = (value: unknown): value is Json =>
  !!value && typeof value === 'object' && !Array.isArray(value);

/**
 * The success envelope (`ok()`), declared once as `components.schemas.SuccessEnvelope` (everything but
 * `data`): each success response is `allOf: [SuccessEnvelope, { data }]`, which generators type as the
 * envelope with that response's `data`. The component is the first envelope met, without `data`; an
 * envelope that differs from it elsewhere than in `data` stays written out. The schema's `description`,
 * the response's own, is said once, on the response.
 */
class SuccessEnvelopes {
  schema: Json | undefined;
  private key: string | undefined;

  refer(schema: Json, responseDescription: unknown): Json | undefined {
    const properties = schema.properties;
    if (!isJson(properties) || Object.keys(properties).sort().join() !== ENVELOPE_KEYS) return undefined;
    const isSuccess = properties.isSuccess;
    if (!isJson(isSuccess) || JSON.stringify(isSuccess.enum) !== '[true]') return undefined;
    const { description, properties: _, ...rest } = schema;
    if (description !== undefined && description !== responseDescription) return undefined;
    const { data, ...envelope } = properties;
    const common = {
      ...rest,
      required: (rest.required as string[] | undefined)?.filter((name) => name !== 'data'),
      properties: envelope,
    };
    const key = JSON.stringify(common);
    if (this.key === undefined) {
      this.key = key;
      this.schema = {
        description: "Every success answer: this envelope around the operation's own `data`",
        ...structuredClone(common),
      };
    } else if (key !== this.key) return undefined;
    return {
      allOf: [
        { $ref: `#/components/schemas/${SUCCESS_ENVELOPE}` },
        { type: 'object', required: ['data'], properties: { data } },
      ],
    };
  }
}

/**
 * A parameter written the same way on two operations or more (`userId`, `limit`, `cursor`,
 * `idempotency-key`...) is declared once in `components.parameters`, named after it in PascalCase
 * (`#/components/parameters/IdempotencyKey`), and each operation refers to it. Parameters of the same name
 * that differ get the place they are in as a suffix (`IdInPath`), then a number.
 */
function shareParameters(paths: Record<string, Record<string, Json>>, components: Json): void {
  const ops = Object.values(paths).flatMap((item) => METHODS.flatMap((m) => (item[m] ? [item[m]] : [])));
  const uses = new Map<string, number>();
  for (const op of ops) {
    for (const param of (op.parameters ?? []) as Json[]) {
      if (param.$ref) continue;
      const key = JSON.stringify(param);
      uses.set(key, (uses.get(key) ?? 0) + 1);
    }
  }
  const existing = (components.parameters ?? {}) as Json;
  const shared = [...uses].filter(([, count]) => count > 1).map(([key]) => key);
  const baseOf = (key: string) => pascalCase(String((JSON.parse(key) as Json).name));
  const names = new Map<string, string>();
  const taken = new Set(Object.keys(existing));
  const added: Json = {};
  // Sorted, so that the names do not depend on the order the routes are registered in.
  for (const key of shared.sort()) {
    const param = JSON.parse(key) as Json;
    const base = baseOf(key);
    const alike = shared.filter((other) => baseOf(other) === base).length > 1 || taken.has(base);
    let name = alike ? base + variantOf(param) : base;
    for (let i = 2; taken.has(name); i++) name = `${base}${variantOf(param)}${i}`;
    taken.add(name);
    names.set(key, name);
    added[name] = param;
  }
  if (names.size === 0) return;
  for (const op of ops) {
    op.parameters = ((op.parameters ?? []) as Json[]).map((param) => {
      const name = param.$ref ? undefined : names.get(JSON.stringify(param));
      return name ? { $ref: `#/components/parameters/${name}` } : param;
    });
  }
  components.parameters = {
    ...existing,
    ...Object.fromEntries(
      Object.keys(added)
        .sort()
        .map((name) => [name, added[name]]),
    ),
  };
}

/** What tells apart parameters of the same name: their enum (`ExpandPurchase`), else their length (`IdMax64`). */
function variantOf(param: Json): string {
  const schema = (isJson(param.schema) ? param.schema : {}) as Json;
  const values = (schema.enum ?? (isJson(schema.items) ? schema.items.enum : undefined)) as
    | unknown[]
    | undefined;
  if (values?.length) return pascalCase(values.join('-'));
  return schema.maxLength !== undefined ? `Max${schema.maxLength}` : '';
}

const pascalCase = (name: string) =>
  name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]?.toUpperCase() + part.slice(1))
    .join('');

/**
 * A union of string literals (TypeBox's `Type.Union([Type.Literal('a'), ...])`, in the document an `anyOf`
 * of one-value enums) is written as the one string enum it is: `{ type: string, enum: [a, ...] }`.
 */
function collapseLiteralUnions(node: unknown): void {
  if (Array.isArray(node)) {
    for (const child of node) collapseLiteralUnions(child);
    return;
  }
  if (!isJson(node)) return;
  for (const child of Object.values(node)) collapseLiteralUnions(child);
  const branches = node.anyOf;
  if (!Array.isArray(branches) || branches.length < 2) return;
  const literal = (branch: unknown) =>
    isJson(branch) &&
    Object.keys(branch).sort().join() === 'enum,type' &&
    branch.type === 'string' &&
    Array.isArray(branch.enum) &&
    branch.enum.length === 1;
  if (!branches.every(literal) || node.type !== undefined || node.enum !== undefined) return;
  delete node.anyOf;
  node.type = 'string';
  node.enum = branches.map((branch) => ((branch as Json).enum as unknown[])[0]);
}

/** Smaller property schemas are left where they are: a `$ref` would save little. */
const SHARED_PROPERTY_MIN = 100;

/**
 * A property schema written the same way in two places or more of the operations (`metadata` in every body
 * that takes it, `successUrl`...) is declared once in `components.schemas`, named after the property in
 * PascalCase (`#/components/schemas/Metadata`). A name already taken, or the same property name with
 * different schemas, leaves them written out.
 */
function shareProperties(paths: Record<string, Record<string, Json>>, components: Json): void {
  const schemas = (components.schemas ?? {}) as Json;
  const found = new Map<string, Map<string, number>>();
  const visit = (node: unknown, each: (owner: Json, key: string, schema: Json) => boolean): void => {
    if (Array.isArray(node)) {
      for (const child of node) visit(child, each);
      return;
    }
    if (!isJson(node)) return;
    const properties = isJson(node.properties) ? node.properties : undefined;
    for (const child of Object.values(node)) {
      if (properties && child === properties) {
        for (const [name, schema] of Object.entries(properties)) {
          if (!isJson(schema) || !each(properties, name, schema)) visit(schema, each);
        }
      } else visit(child, each);
    }
  };
  visit(paths, (_owner, key, schema) => {
    const json = JSON.stringify(schema);
    if (schema.$ref || json.length < SHARED_PROPERTY_MIN) return false;
    const variants = found.get(key) ?? new Map<string, number>();
    variants.set(json, (variants.get(json) ?? 0) + 1);
    found.set(key, variants);
    return false;
  });
  const shared = new Map<string, string>();
  for (const [key, variants] of [...found].sort((a, b) => a[0].localeCompare(b[0]))) {
    const name = pascalCase(key);
    const [json, count] = [...variants][0] ?? ['', 0];
    if (variants.size !== 1 || count < 2 || schemas[name] !== undefined) continue;
    shared.set(key, json);
    schemas[name] = JSON.parse(json);
  }
  if (shared.size === 0) return;
  visit(paths, (owner, key, schema) => {
    if (shared.get(key) !== JSON.stringify(schema)) return false;
    owner[key] = { $ref: `#/components/schemas/${pascalCase(key)}` };
    return true;
  });
  components.schemas = schemas;
}

/** A collection this long or shorter (as JSON) whose children all fit on a line is written on one line. */
const FLOW_MAX = 300;

/**
 * The document as YAML, as `openapi.yaml` holds it and `/docs/yaml` serves it: short collections (a leaf
 * schema, a `$ref`, a headers block) in flow style on one line, no line folding, block sequences not
 * indented under their key. Only the layout differs from `yaml.stringify`: the same data parses back.
 */
export function toYaml(document: unknown): string {
  const doc = new Document(document);
  const oneLine = (node: unknown): boolean => {
    if (isMap(node) || isSeq(node)) {
      const children: unknown[] = isMap(node) ? node.items.map((pair) => pair.value) : node.items;
      let all = true;
      for (const child of children) if (!oneLine(child)) all = false;
      if (!all || JSON.stringify(node.toJSON()).length > FLOW_MAX) return false;
      node.flow = true;
      return true;
    }
    return node === null || node === undefined || isScalar(node) || isAlias(node);
  };
  oneLine(doc.contents);
  return doc.toString({ lineWidth: 0, indentSeq: false, flowCollectionPadding: false });
}
