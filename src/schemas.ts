import { type Static, type TSchema, Type } from '@sinclair/typebox';

/** Shared TypeBox schemas: envelope, pagination, ids and the API's resources. */

export const Id = Type.String({ minLength: 1, maxLength: 128 });
export const UserId = Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\s/]+$' });
export const Timestamp = Type.String({ format: 'date-time' });
/** Credits and minor units: integers from 1 (or 0) to 2^53-1, so they stay exact in JSON and in JS. */
export const PositiveAmount = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
export const NonNegativeAmount = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
export const Metadata = Type.Record(Type.String({ maxLength: 40 }), Type.Unknown(), {
  description: 'Free-form JSON object stored with the entry',
});

export function Envelope<T extends TSchema>(data: T) {
  return Type.Object({
    isSuccess: Type.Literal(true),
    statusCode: Type.Integer(),
    data,
    errors: Type.Array(Type.String(), { maxItems: 0 }),
    timestamp: Timestamp,
  });
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

/** Error responses every route can give; spread into a route's `response`. */
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

export const UserIdParams = Type.Object({ userId: UserId });
/** Debits, holds and reversals: the client's key for safe retries. */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.String({ minLength: 1, maxLength: 255 }),
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
  },
  { $id: 'LedgerEntry' },
);
export type LedgerEntry = Static<typeof LedgerEntrySchema>;

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

export const PurchaseStatusSchema = Type.Union(
  ['pending', 'completed', 'failed', 'expired', 'refunded', 'partially_refunded', 'disputed'].map((s) =>
    Type.Literal(s),
  ),
);

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
  },
  { $id: 'Purchase' },
);

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

export const DebitBody = Type.Object(
  {
    amount: PositiveAmount,
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

type Security = { [scheme: string]: string[] }[];
/** OpenAPI security of routes that take a JWT (or an API key in `Authorization: Bearer`). */
export const bearerSecurity: Security = [{ bearer: [] }];
/** OpenAPI security of routes that also take an API key in `x-api-key`. */
export const anySecurity: Security = [{ bearer: [] }, { apiKey: [] }];
