import { type Static, type TSchema, Type } from '@sinclair/typebox';

/** Shared TypeBox schemas: envelope, pagination, ids and the API's resources. */

export const Id = Type.String({ minLength: 1, maxLength: 128 });
export const UserId = Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\s/]+$' });
export const Timestamp = Type.String({ format: 'date-time' });
/** Credits and minor units: integers from 1 (or 0) to 2^53-1, so they stay exact in JSON and in JS. */
export const PositiveAmount = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
export const NonNegativeAmount = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/**
 * Metadata as Stripe takes it: a flat object of at most 50 keys (1..40 characters), each value a string
 * (up to 500 characters), a number, a boolean or null. Every route that takes metadata uses this schema.
 */
export const Metadata = Type.Record(
  Type.String(),
  Type.Union([Type.String({ maxLength: 500 }), Type.Number(), Type.Boolean(), Type.Null()]),
  {
    maxProperties: 50,
    propertyNames: { minLength: 1, maxLength: 40 },
    description:
      'Flat key-value pairs stored with the entry: at most 50 keys of 1..40 characters; values are strings ' +
      '(up to 500 characters), numbers, booleans or null',
  },
);
export type Metadata = Static<typeof Metadata>;

export function Envelope<T extends TSchema>(data: T, description?: string) {
  return Type.Object(
    {
      isSuccess: Type.Literal(true),
      statusCode: Type.Integer(),
      data,
      errors: Type.Array(Type.String(), { maxItems: 0 }),
      timestamp: Timestamp,
    },
    description ? { description } : {},
  );
}

export const ErrorEnvelope = Type.Object(
  {
    isSuccess: Type.Literal(false),
    statusCode: Type.Integer(),
    code: Type.String({ description: 'Machine-readable error code' }),
    data: Type.Null(),
    errors: Type.Array(Type.String()),
    timestamp: Timestamp,
  },
  { $id: 'ErrorEnvelope' },
);

/**
 * Kept so routes written before `errors()` in src/http/openapi.ts still compile; new routes use `errors(...)`,
 * which documents each status with its own component and description.
 */
export const errorResponses = {
  '4xx': Type.Ref(ErrorEnvelope),
  '5xx': Type.Ref(ErrorEnvelope),
};

export const PageQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
);
export type PageQuery = Static<typeof PageQuery>;

export function Page<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });
}

/** `?expand=a&expand=b`: related objects to embed. An unknown value is 400. */
function Expand<const V extends string>(values: readonly V[], description: string) {
  return Type.Object(
    {
      expand: Type.Optional(
        Type.Array(Type.Union(values.map((v) => Type.Literal(v))), {
          maxItems: values.length * 2,
          description,
        }),
      ),
    },
    { additionalProperties: false },
  );
}
export const PurchaseExpandQuery = Expand(
  ['package'],
  '`package`: each purchase also carries `package`, the package as it is now',
);
export const LedgerExpandQuery = Expand(
  ['purchase'],
  '`purchase`: each entry also carries `purchase`, the purchase it belongs to (null when none)',
);
export const PurchasePageQuery = Type.Composite([PageQuery, PurchaseExpandQuery], {
  additionalProperties: false,
});
export const LedgerPageQuery = Type.Composite([PageQuery, LedgerExpandQuery], {
  additionalProperties: false,
});

export const UserIdParams = Type.Object({ userId: UserId });
/** Debits, holds and reversals: the client's key for safe retries. */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.String({
    minLength: 1,
    maxLength: 255,
    description: 'Any unique string per operation (a UUID); a retry with the same key is answered once',
  }),
});
export const IdParams = Type.Object({ id: Id });

export const Scope = Type.Union([
  Type.Literal('checkout:create'),
  Type.Literal('credits:debit'),
  Type.Literal('balances:read'),
  Type.Literal('ledger:read'),
  Type.Literal('packages:write'),
]);
export type Scope = Static<typeof Scope>;

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** The kinds of ledger entry; the `ledger_entries.type` column holds the same values. */
export const LedgerEntryTypeSchema = Type.Union([
  Type.Literal('grant'),
  Type.Literal('debit'),
  Type.Literal('reversal'),
  Type.Literal('expiry'),
  Type.Literal('debit_reversal'),
]);
export type LedgerEntryType = Static<typeof LedgerEntryTypeSchema>;

export const ProviderSchema = Type.Union([
  Type.Literal('stripe'),
  Type.Literal('revenuecat'),
  Type.Literal('dev'),
]);
export type Provider = Static<typeof ProviderSchema>;
/** Where an entry's credits came from or went: a provider, or `api` (debits). */
export const LedgerSourceSchema = Type.Union([...ProviderSchema.anyOf, Type.Literal('api')]);
export type LedgerSource = Static<typeof LedgerSourceSchema>;

/**
 * A deep copy without `$id`s, to nest a named schema inside another that may carry it too (the dev purchase
 * answers a purchase and an entry that can hold one): one response schema may not define an id twice.
 */
function withoutIds<T extends TSchema>(schema: T): T {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (value && typeof value === 'object') {
      const out: Record<string | symbol, unknown> = {};
      for (const key of Reflect.ownKeys(value)) {
        if (key !== '$id') out[key] = strip((value as Record<string | symbol, unknown>)[key]);
      }
      return out;
    }
    return value;
  };
  return strip(schema) as T;
}

export const BalanceSchema = Type.Object(
  {
    userId: Type.String(),
    balance: Type.Integer({ minimum: 0 }),
    available: Type.Integer({
      minimum: 0,
      description: 'balance - held: what debits and new holds may take',
    }),
    held: Type.Integer({ minimum: 0, description: 'What active holds reserve' }),
    updatedAt: Nullable(Timestamp),
    expiringSoon: Type.Array(Type.Object({ credits: Type.Integer(), expiresAt: Timestamp }), {
      description: 'Remaining credits that have an expiry, summed per expiry time, soonest first, at most 10',
    }),
  },
  { $id: 'Balance' },
);
export type Balance = Static<typeof BalanceSchema>;

export const AccountSchema = Type.Object({
  userId: Type.String(),
  balance: Type.Integer({ minimum: 0 }),
  available: Type.Integer({ minimum: 0 }),
  held: Type.Integer({ minimum: 0 }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const PackageSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    description: Nullable(Type.String()),
    credits: Type.Integer({ minimum: 1 }),
    price: Type.Integer({ minimum: 0, description: "In the currency's minor units" }),
    currency: Type.String({ description: 'ISO 4217, lower case' }),
    isActive: Type.Boolean(),
    stripePriceId: Nullable(Type.String()),
    revenuecatProductIds: Type.Array(Type.String()),
    creditExpiryDays: Nullable(
      Type.Integer({ description: 'Credits expire this many days after the grant; null: never' }),
    ),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Package' },
);

/**
 * A purchase's status: the one definition. The table type (PurchasesTable) and the purchase lifecycle take
 * `PurchaseStatus` from here, as the other enums of the API's resources; src/modules/purchases/purchase-status.ts
 * holds the domain's rules over it. (Here rather than in the purchases module: src/http reaches a module only
 * through its index.ts, which serves routes that import this file.)
 */
export const PurchaseStatusSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('completed'),
  Type.Literal('failed'),
  Type.Literal('expired'),
  Type.Literal('refunded'),
  Type.Literal('partially_refunded'),
  Type.Literal('disputed'),
]);
export type PurchaseStatus = Static<typeof PurchaseStatusSchema>;

export const PurchaseSchema = Type.Object(
  {
    id: Type.String(),
    userId: Type.String(),
    packageId: Type.String(),
    provider: ProviderSchema,
    providerRef: Nullable(Type.String()),
    status: PurchaseStatusSchema,
    credits: Type.Integer(),
    price: Type.Integer(),
    currency: Type.String(),
    creditsReversed: Type.Integer(),
    createdAt: Timestamp,
    completedAt: Nullable(Timestamp),
    /** Only with `?expand=package`. */
    package: Type.Optional(PackageSchema),
  },
  { $id: 'Purchase' },
);
export type Purchase = Static<typeof PurchaseSchema>;

export const HoldStatusSchema = Type.Union([
  Type.Literal('active'),
  Type.Literal('captured'),
  Type.Literal('released'),
  Type.Literal('expired'),
]);
export type HoldStatus = Static<typeof HoldStatusSchema>;

export const HoldSchema = Type.Object(
  {
    id: Type.String(),
    userId: Type.String(),
    amount: Type.Integer({ minimum: 1 }),
    capturedAmount: Type.Integer({ minimum: 0 }),
    status: HoldStatusSchema,
    reason: Nullable(Type.String()),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    createdAt: Timestamp,
    expiresAt: Timestamp,
    capturedAt: Nullable(Timestamp),
    releasedAt: Nullable(Timestamp),
    entryId: Nullable(Type.String({ description: 'The debit entry of the capture' })),
  },
  { $id: 'Hold' },
);
export type Hold = Static<typeof HoldSchema>;

/** After a change: the balance (right after the entry, for a replay), and what holds reserve now. */
export const BalanceAfterFields = {
  balance: Type.Integer({ minimum: 0, description: 'The balance right after the operation' }),
  available: Type.Integer({ minimum: 0, description: 'balance - held' }),
  held: Type.Integer({ minimum: 0, description: 'What active holds reserve' }),
};

export const LedgerEntrySchema = Type.Object(
  {
    id: Type.String(),
    userId: Type.String(),
    type: LedgerEntryTypeSchema,
    amount: Type.Integer({
      description:
        'Signed: positive for grants and debit reversals, negative for debits, reversals (clawbacks) and expiries',
    }),
    balanceAfter: Type.Integer(),
    source: LedgerSourceSchema,
    purchaseId: Nullable(Type.String()),
    holdId: Nullable(Type.String({ description: 'The hold a capture debited' })),
    reversesEntryId: Nullable(Type.String({ description: 'The debit a debit_reversal gives back' })),
    reason: Nullable(Type.String()),
    idempotencyKey: Nullable(Type.String()),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    createdAt: Timestamp,
    /** Only with `?expand=purchase`. */
    purchase: Type.Optional(Nullable(withoutIds(PurchaseSchema))),
  },
  { $id: 'LedgerEntry' },
);
export type LedgerEntry = Static<typeof LedgerEntrySchema>;

export const DebitBody = Type.Object(
  {
    amount: PositiveAmount,
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    metadata: Type.Optional(Metadata),
  },
  {
    additionalProperties: false,
    examples: [{ amount: 5, reason: 'Image generation', metadata: { jobId: 'job_8431' } }],
  },
);

type Security = { [scheme: string]: string[] }[];
/** OpenAPI security of routes that take a JWT (or an API key in `Authorization: Bearer`). */
export const bearerSecurity: Security = [{ bearer: [] }];
/** OpenAPI security of routes that also take an API key in `x-api-key`. */
export const anySecurity: Security = [{ bearer: [] }, { apiKey: [] }];
