/**
 * Turning what an operator picked on a screen into the API's query parameters (CONTRACT section 15), and
 * shaping answers for tables and charts. Pure functions: the unit tests run them without a browser.
 */

export const ENTRY_TYPES = ['grant', 'debit', 'reversal', 'expiry', 'debit_reversal'] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];

export interface LedgerFilters {
  types: readonly EntryType[];
  /** A day as an `<input type="date">` gives it ("2026-12-01"), inclusive; '' for none. */
  fromDay: string;
  /** A day, inclusive for the operator: the query's `to` is the start of the next day (exclusive). */
  toDay: string;
}

export const NO_FILTERS: LedgerFilters = { types: [], fromDay: '', toDay: '' };

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

/** The ledger query for these filters: `type` comma-separated, `from` inclusive, `to` exclusive (ISO). */
export function ledgerQuery(filters: LedgerFilters): { type?: string; from?: string; to?: string } {
  const query: { type?: string; from?: string; to?: string } = {};
  if (filters.types.length > 0 && filters.types.length < ENTRY_TYPES.length) {
    query.type = ENTRY_TYPES.filter((t) => filters.types.includes(t)).join(',');
  }
  if (DAY.test(filters.fromDay)) query.from = new Date(`${filters.fromDay}T00:00:00.000Z`).toISOString();
  if (DAY.test(filters.toDay)) {
    query.to = new Date(new Date(`${filters.toDay}T00:00:00.000Z`).getTime() + DAY_MS).toISOString();
  }
  return query;
}

/** `path?query` with empty values left out, in a stable order (the CSV export's address). */
export function withQuery(path: string, query: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** The file name a CSV export is saved under when the answer does not name one. */
export function csvFileName(what: string, now: Date): string {
  return `${what.replace(/[^\w.-]+/g, '_')}-${now.toISOString().slice(0, 10)}.csv`;
}

export type Range = 'hour' | 'day' | 'week';
export type Interval = 'hour' | 'day' | 'week' | 'month';

/** How far back each range of the balance chart looks: 48 hours, 30 days, 26 weeks. */
export const RANGE_SPAN: Record<Range, number> = { hour: 48, day: 30, week: 26 };

/** The start (UTC) of the interval containing `at`; weeks start on Monday, as the API's do. */
export function intervalStart(at: Date, interval: Interval): Date {
  const d = new Date(at.getTime());
  if (interval === 'hour') {
    d.setUTCMinutes(0, 0, 0);
    return d;
  }
  d.setUTCHours(0, 0, 0, 0);
  if (interval === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  if (interval === 'month') d.setUTCDate(1);
  return d;
}

function addIntervals(at: Date, interval: Interval, n: number): Date {
  const d = new Date(at.getTime());
  if (interval === 'hour') d.setUTCHours(d.getUTCHours() + n);
  else if (interval === 'day') d.setUTCDate(d.getUTCDate() + n);
  else if (interval === 'week') d.setUTCDate(d.getUTCDate() + 7 * n);
  else d.setUTCMonth(d.getUTCMonth() + n);
  return d;
}

/** The balance-history query of a range: whole intervals, the current one last. */
export function rangeQuery(range: Range, now: Date): { from: string; to: string; interval: Interval } {
  const to = addIntervals(intervalStart(now, range), range, 1);
  const from = addIntervals(to, range, -RANGE_SPAN[range]);
  return { from: from.toISOString(), to: to.toISOString(), interval: range };
}

/** The credits report's query for the `days` days up to and including today. */
export function lastDaysQuery(days: number, now: Date): { from: string; to: string; interval: 'day' } {
  const to = addIntervals(intervalStart(now, 'day'), 'day', 1);
  return { from: addIntervals(to, 'day', -days).toISOString(), to: to.toISOString(), interval: 'day' };
}

/** Columns for a uPlot chart: x in Unix seconds, then one array per series. */
export type ChartColumns = [number[], ...number[][]];

/** Balance history as chart columns: every interval, empty ones included (they keep the balance). */
export function balanceColumns(items: readonly { at: string; balance: number }[]): ChartColumns {
  return [items.map((i) => Math.floor(Date.parse(i.at) / 1000)), items.map((i) => i.balance)];
}

export interface ReportItem {
  at: string;
  currency: string | null;
  credits: { granted: number; debited: number; outstanding: number };
}

/**
 * The credits report per interval, all currencies together (credits are credits whatever they were paid in):
 * x, granted, debited, and the outstanding balance at each interval's end.
 */
export function reportColumns(items: readonly ReportItem[]): {
  columns: ChartColumns;
  outstanding: number | null;
} {
  const byAt = new Map<string, { granted: number; debited: number; outstanding: number }>();
  for (const item of items) {
    const sum = byAt.get(item.at) ?? { granted: 0, debited: 0, outstanding: 0 };
    sum.granted += item.credits.granted;
    sum.debited += item.credits.debited;
    sum.outstanding += item.credits.outstanding;
    byAt.set(item.at, sum);
  }
  const ats = [...byAt.keys()].sort((a, b) => Date.parse(a) - Date.parse(b));
  const sums = ats.map((at) => byAt.get(at)!);
  return {
    columns: [
      ats.map((at) => Math.floor(Date.parse(at) / 1000)),
      sums.map((s) => s.granted),
      sums.map((s) => s.debited),
    ],
    outstanding: sums.length > 0 ? sums[sums.length - 1]!.outstanding : null,
  };
}
