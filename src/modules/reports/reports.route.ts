import { type Static, Type } from '@sinclair/typebox';
import { okOrCsv, wantsCsv } from '../../http/csv.ts';
import { errors, ok } from '../../http/openapi.ts';
import { anySecurity, Page, PageQuery, Timestamp, UserIdParams } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { MAX_INTERVALS } from './reports.service.ts';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const RangeFields = {
  from: Type.Optional(
    Type.String({
      format: 'date-time',
      description:
        'ISO time with offset; the first interval is the one it falls in (default: 30 days before `to`)',
    }),
  ),
  to: Type.Optional(
    Type.String({
      format: 'date-time',
      description:
        'ISO time with offset, exclusive; the last interval is the one just before it (default: now)',
    }),
  ),
};

const BalanceHistoryQuery = Type.Object(
  {
    ...RangeFields,
    interval: Type.Optional(
      Type.Union([Type.Literal('hour'), Type.Literal('day'), Type.Literal('week'), Type.Literal('month')], {
        description: 'Interval length (default `day`); weeks start on Monday, UTC',
      }),
    ),
  },
  { additionalProperties: false },
);

const BalanceHistorySchema = Type.Object({
  userId: Type.String(),
  interval: Type.String(),
  items: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time', description: "The interval's start (UTC)" }),
      balance: Type.Integer({
        description:
          'The balance at the end of the interval (balanceAfter of its last entry, or carried forward)',
      }),
      credited: Type.Integer({ description: 'Sum of the positive amounts within the interval' }),
      debited: Type.Integer({
        description: 'Sum of the negative amounts within the interval, as a positive number',
      }),
    }),
  ),
});

const LotStatus = Type.Union([Type.Literal('active'), Type.Literal('spent'), Type.Literal('expired')]);

const LotsQuery = Type.Composite([PageQuery, Type.Object({ status: Type.Optional(LotStatus) })], {
  additionalProperties: false,
});

const LotSchema = Type.Object({
  id: Type.String(),
  entryId: Type.String({ description: 'The entry that created the lot (its grant)' }),
  purchaseId: Nullable(Type.String()),
  source: Type.String(),
  amount: Type.Integer({ description: 'Credits the lot was created with' }),
  remaining: Type.Integer({ description: 'Credits left in it' }),
  held: Type.Integer({ description: 'Of `remaining`, what active holds reserve' }),
  expiresAt: Type.Union([Timestamp, Type.Null()]),
  status: LotStatus,
  price: Type.Union([Type.Integer(), Type.Null()], {
    description: "What its purchase paid, in the currency's minor units (null: no purchase)",
  }),
  currency: Nullable(Type.String()),
  createdAt: Timestamp,
});

const ReportQuery = Type.Object(
  {
    ...RangeFields,
    interval: Type.Optional(
      Type.Union([Type.Literal('day'), Type.Literal('week'), Type.Literal('month')], {
        description: 'Interval length (default `day`); weeks start on Monday, UTC',
      }),
    ),
  },
  { additionalProperties: false },
);

const ReportSchema = Type.Object({
  interval: Type.String(),
  items: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time', description: "The interval's start (UTC)" }),
      currency: Type.Union([Type.String(), Type.Null()], {
        description: "The purchases' currency; null for credits with no purchase price",
      }),
      credits: Type.Object({
        granted: Type.Integer(),
        debited: Type.Integer(),
        debitReversed: Type.Integer(),
        clawedBack: Type.Integer(),
        expired: Type.Integer(),
        outstanding: Type.Integer({ description: 'What all accounts hold at the end of the interval' }),
      }),
      money: Type.Object({
        sold: Type.Integer(),
        recognized: Type.Integer(),
        breakage: Type.Integer(),
        clawedBack: Type.Integer(),
        deferred: Type.Integer({
          description: 'Previous deferred + sold - recognized - breakage - clawedBack, exactly',
        }),
      }),
    }),
  ),
});

const REPORT_CSV =
  'With `Accept: text/csv`: the same rows as CSV, oldest first, as an attachment. Columns: at,currency,' +
  'credits.granted,credits.debited,credits.debitReversed,credits.clawedBack,credits.expired,' +
  'credits.outstanding,money.sold,money.recognized,money.breakage,money.clawedBack,money.deferred.';

/** Balance history, lots and the credits report (CONTRACT section 15; docs/reports.md). */
export default async function reportRoutes(app: App) {
  const security = anySecurity;

  app.get(
    '/accounts/:userId/balance-history',
    {
      // Read-pool queries with a timeout of their own (REPORT_TIMEOUT_MS): a report over every movement may take
      // longer than the API's request deadline, and must not be cut off (503) or counted as a database outage.
      config: { deadline: false },
      onRequest: app.authorize(['self', 'admin', 'ops', 'ledger:read']),
      schema: {
        operationId: 'getBalanceHistory',
        tags: ['reports'],
        summary: "A user's balance over time",
        description:
          'One item per interval from `from` to `to`, oldest first, empty intervals included: the balance at the ' +
          "interval's end and the credits in and out within it. Default: the last 30 days by day. More than " +
          `${MAX_INTERVALS} intervals: 400. The user themselves, admins, ops, API keys with \`ledger:read\`. Read ` +
          'from DATABASE_READ_URL when set.',
        security,
        params: UserIdParams,
        querystring: BalanceHistoryQuery,
        response: { 200: ok(BalanceHistorySchema, 'The balance per interval'), ...errors(401, 403) },
      },
    },
    async (request, reply) =>
      reply.ok(await app.services.reports.balanceHistory(request.params.userId, request.query)),
  );

  app.get(
    '/accounts/:userId/lots',
    {
      onRequest: app.authorize(['self', 'admin', 'ops', 'ledger:read']),
      schema: {
        operationId: 'listAccountLots',
        tags: ['reports'],
        summary: "A user's credit lots",
        description:
          'Each grant creates a lot; debits take from the lot that expires soonest, then the oldest. Newest first, ' +
          "paginated; `?status=active|spent|expired`. `price` and `currency` are its purchase's. The user " +
          'themselves, admins, ops, API keys with `ledger:read`.',
        security,
        params: UserIdParams,
        querystring: LotsQuery,
        response: {
          200: ok(Page(LotSchema), 'A page of lots; `nextCursor` fetches the next one'),
          ...errors(401, 403),
        },
      },
    },
    async (request, reply) =>
      reply.ok(
        await app.services.reports.lots(
          request.params.userId,
          request.query.limit,
          request.query.cursor,
          request.query.status,
        ),
      ),
  );

  app.get(
    '/reports/credits',
    {
      // Read-pool queries with a timeout of their own (REPORT_TIMEOUT_MS): a report over every movement may take
      // longer than the API's request deadline, and must not be cut off (503) or counted as a database outage.
      config: { deadline: false },
      onRequest: app.authorize(['admin', 'ops']),
      schema: {
        operationId: 'getCreditsReport',
        tags: ['reports'],
        summary: 'Credits and their cost per interval and currency',
        description:
          'One item per interval and currency, oldest first: credits granted, debited, given back, clawed back, ' +
          'expired and outstanding, and at cost (minor units) what was sold, recognized, broken (expired), ' +
          'clawed back and is still deferred. For every currency and interval, previous deferred + sold - ' +
          `recognized - breakage - clawedBack = deferred, exactly. More than ${MAX_INTERVALS} intervals: 400. ` +
          'Admins and ops. Read from DATABASE_READ_URL when set. See docs/reports.md.',
        security,
        querystring: ReportQuery,
        response: { 200: okOrCsv(ReportSchema, 'The report', REPORT_CSV), ...errors(401, 403) },
      },
    },
    async (request, reply) => {
      if (wantsCsv(request)) return app.services.reports.creditsReportCsv(reply, request.query);
      return reply.ok(await app.services.reports.creditsReport(request.query));
    },
  );
}

export type BalanceHistoryQuery = Static<typeof BalanceHistoryQuery>;
