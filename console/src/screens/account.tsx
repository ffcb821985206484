import { useMemo, useState } from 'preact/hooks';
import { api, call, downloadCsv, type Problem } from '../api/client.ts';
import type { components } from '../api/openapi.gen.ts';
import { Chart } from '../components/chart.tsx';
import { Confirm, Figure, Loaded, PagedTable, ProblemBox, useLoad } from '../components/ui.tsx';
import {
  formatCredits,
  formatDay,
  formatJson,
  formatMoney,
  formatSigned,
  formatTime,
  shortId,
} from '../lib/format.ts';
import type { MessageKey } from '../lib/i18n.ts';
import { newIdempotencyKey } from '../lib/idempotency.ts';
import {
  balanceColumns,
  csvFileName,
  ENTRY_TYPES,
  type EntryType,
  type LedgerFilters,
  ledgerQuery,
  NO_FILTERS,
  type Range,
  rangeQuery,
  withQuery,
} from '../lib/query.ts';
import { can, lang, t } from '../state.ts';

type Entry = components['schemas']['LedgerEntry'];
type Hold = components['schemas']['Hold'];

export function AccountScreen({ userId }: { userId: string }) {
  // Bumped after an action, so every part of the page that it changed reads again.
  const [version, setVersion] = useState(0);
  const changed = () => setVersion((v) => v + 1);
  return (
    <section>
      <h1>{t('account.title', { userId })}</h1>
      <Figures userId={userId} version={version} />
      <BalanceChart userId={userId} version={version} />
      <Ledger userId={userId} version={version} onChange={changed} />
      <Lots userId={userId} version={version} />
      <Purchases userId={userId} />
      <Holds userId={userId} version={version} onChange={changed} />
      {can.value.admin && <SyncRevenuecat userId={userId} onChange={changed} />}
    </section>
  );
}

function Figures({ userId, version }: { userId: string; version: number }) {
  const [load] = useLoad(
    () => call(api.GET('/api/v1/accounts/{userId}/balance', { params: { path: { userId } } })),
    [userId, version],
  );
  return (
    <Loaded load={load}>
      {(b) => (
        <>
          <div class="figures">
            <Figure label={t('account.balance')} value={formatCredits(b.balance, lang.value)} />
            <Figure label={t('account.available')} value={formatCredits(b.available, lang.value)} />
            <Figure label={t('account.held')} value={formatCredits(b.held, lang.value)} />
          </div>
          <h2>{t('account.expiring')}</h2>
          {b.expiringSoon.length === 0 ? (
            <p class="muted">{t('account.noExpiry')}</p>
          ) : (
            <ul>
              {b.expiringSoon.map((e) => (
                <li key={e.expiresAt}>
                  {t('account.expiringItem', {
                    credits: formatCredits(e.credits, lang.value),
                    date: formatTime(e.expiresAt),
                  })}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </Loaded>
  );
}

const RANGES: Range[] = ['hour', 'day', 'week'];
const INTERVAL_NAMES: Record<string, MessageKey> = {
  hour: 'interval.hour',
  day: 'interval.day',
  week: 'interval.week',
  month: 'interval.month',
};
const intervalName = (interval: string) => {
  const key = INTERVAL_NAMES[interval];
  return key ? t(key) : interval;
};

function BalanceChart({ userId, version }: { userId: string; version: number }) {
  const [range, setRange] = useState<Range>('day');
  const query = useMemo(() => rangeQuery(range, new Date()), [range, version]);
  const [load] = useLoad(
    () => call(api.GET('/api/v1/accounts/{userId}/balance-history', { params: { path: { userId }, query } })),
    [userId, query],
  );
  const series = useMemo(() => [{ label: t('account.balance'), stepped: true }], [lang.value]);
  return (
    <>
      <h2>{t('account.chart')}</h2>
      <fieldset class="ranges">
        <legend>{t('account.range')}</legend>
        {RANGES.map((r) => (
          <button key={r} type="button" aria-pressed={range === r} onClick={() => setRange(r)}>
            {t(`range.${r}`)}
          </button>
        ))}
      </fieldset>
      <Loaded load={load}>
        {(history) => {
          const last = history.items[history.items.length - 1];
          return (
            <Chart
              label={t('account.chartLabel', {
                interval: intervalName(history.interval),
                from: formatDay(query.from),
                to: formatDay(query.to),
                last: last ? formatCredits(last.balance, lang.value) : '—',
              })}
              columns={balanceColumns(history.items)}
              series={series}
            />
          );
        }}
      </Loaded>
    </>
  );
}

function LedgerFilterForm({ onApply }: { onApply: (f: LedgerFilters) => void }) {
  const [types, setTypes] = useState<EntryType[]>([]);
  const [fromDay, setFrom] = useState('');
  const [toDay, setTo] = useState('');
  return (
    <form
      class="filters"
      aria-label={t('ledger.filters')}
      onSubmit={(e) => {
        e.preventDefault();
        onApply({ types, fromDay, toDay });
      }}
    >
      <fieldset>
        <legend>{t('common.type')}</legend>
        {ENTRY_TYPES.map((type) => (
          <label key={type} class="check">
            <input
              type="checkbox"
              checked={types.includes(type)}
              onChange={(e) =>
                setTypes(e.currentTarget.checked ? [...types, type] : types.filter((x) => x !== type))
              }
            />
            {type}
          </label>
        ))}
      </fieldset>
      <label>
        {t('common.from')}
        <input type="date" value={fromDay} onInput={(e) => setFrom(e.currentTarget.value)} />
      </label>
      <label>
        {t('common.to')}
        <input type="date" value={toDay} onInput={(e) => setTo(e.currentTarget.value)} />
      </label>
      <button type="submit">{t('common.apply')}</button>
    </form>
  );
}

function details(e: Entry) {
  const parts: string[] = [];
  if (e.reversesEntryId) parts.push(t('ledger.reverses', { id: shortId(e.reversesEntryId) }));
  if (e.purchaseId) parts.push(t('ledger.purchase', { id: shortId(e.purchaseId) }));
  if (e.holdId) parts.push(t('ledger.hold', { id: shortId(e.holdId) }));
  if (Object.keys(e.metadata).length > 0) parts.push(formatJson(e.metadata).replace(/\s+/g, ' '));
  return parts.join(' · ') || '—';
}

function Ledger({ userId, version, onChange }: { userId: string; version: number; onChange: () => void }) {
  const [filters, setFilters] = useState<LedgerFilters>(NO_FILTERS);
  const query = ledgerQuery(filters);
  const [reversing, setReversing] = useState<{ entry: Entry; key: string } | null>(null);
  const [csvProblem, setCsvProblem] = useState<Problem | null>(null);
  const canReverse = can.value.debit;
  return (
    <>
      <h2>{t('ledger.table')}</h2>
      <LedgerFilterForm onApply={setFilters} />
      <button
        type="button"
        onClick={async () =>
          setCsvProblem(
            await downloadCsv(
              withQuery(`/api/v1/accounts/${encodeURIComponent(userId)}/ledger`, query),
              csvFileName(`ledger-${userId}`, new Date()),
            ),
          )
        }
      >
        {t('common.exportCsv')}
      </button>
      {csvProblem && <ProblemBox problem={csvProblem} />}
      <PagedTable
        caption={t('ledger.table')}
        rowKey={(e) => e.id}
        columns={[
          { header: t('ledger.when'), cell: (e) => formatTime(e.createdAt) },
          { header: t('common.type'), cell: (e) => e.type },
          {
            header: t('common.amount'),
            numeric: true,
            cell: (e) => formatSigned(e.amount, lang.value),
          },
          {
            header: t('ledger.balanceAfter'),
            numeric: true,
            cell: (e) => formatCredits(e.balanceAfter, lang.value),
          },
          { header: t('ledger.source'), cell: (e) => e.source },
          { header: t('common.reason'), cell: (e) => e.reason ?? '—' },
          { header: t('ledger.details'), cell: details },
          canReverse && {
            header: t('common.actions'),
            cell: (e) =>
              e.type === 'debit' ? (
                <button
                  type="button"
                  onClick={() => setReversing({ entry: e, key: newIdempotencyKey('reverse', e.id) })}
                >
                  {t('ledger.reverse')}
                </button>
              ) : null,
          },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(
            api.GET('/api/v1/accounts/{userId}/ledger', {
              params: { path: { userId }, query: { limit: 100, cursor, ...query } },
            }),
          )
        }
        deps={[userId, filters, version]}
      />
      {reversing && (
        <ReverseDialog
          userId={userId}
          entry={reversing.entry}
          idempotencyKey={reversing.key}
          onClose={() => setReversing(null)}
          onDone={onChange}
        />
      )}
    </>
  );
}

function ReverseDialog(props: {
  userId: string;
  entry: Entry;
  idempotencyKey: string;
  onClose: () => void;
  onDone: () => void;
}) {
  const [amount, setAmount] = useState('');
  const [reason, setReason] = useState('');
  return (
    <Confirm
      message={t('ledger.reverseConfirm', {
        id: shortId(props.entry.id),
        amount: formatSigned(props.entry.amount, lang.value),
      })}
      confirmLabel={t('ledger.reverse')}
      onClose={props.onClose}
      onConfirm={async () => {
        const parsed = Number.parseInt(amount, 10);
        const result = await call(
          api.POST('/api/v1/accounts/{userId}/debits/{entryId}/reversals', {
            params: {
              path: { userId: props.userId, entryId: props.entry.id },
              header: { 'idempotency-key': props.idempotencyKey },
            },
            body: {
              ...(amount.trim() !== '' && Number.isFinite(parsed) ? { amount: parsed } : {}),
              ...(reason.trim() ? { reason: reason.trim() } : {}),
            },
          }),
        );
        if (!result.ok) return result.problem;
        props.onDone();
        return null;
      }}
    >
      <label>
        {t('ledger.reverseAmount')}
        <input
          type="number"
          min={1}
          max={Math.abs(props.entry.amount)}
          value={amount}
          onInput={(e) => setAmount(e.currentTarget.value)}
        />
      </label>
      <label>
        {t('common.reason')}
        <input type="text" maxLength={500} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
    </Confirm>
  );
}

function Lots({ userId, version }: { userId: string; version: number }) {
  return (
    <>
      <h2>{t('lots.table')}</h2>
      <PagedTable
        caption={t('lots.table')}
        rowKey={(l) => l.id}
        columns={[
          { header: t('common.created'), cell: (l) => formatTime(l.createdAt) },
          { header: t('ledger.source'), cell: (l) => l.source },
          {
            header: t('lots.remaining'),
            numeric: true,
            cell: (l) => `${formatCredits(l.remaining, lang.value)} / ${formatCredits(l.amount, lang.value)}`,
          },
          { header: t('account.held'), numeric: true, cell: (l) => formatCredits(l.held, lang.value) },
          {
            header: t('lots.expires'),
            cell: (l) => (l.expiresAt ? formatTime(l.expiresAt) : t('common.never')),
          },
          { header: t('common.status'), cell: (l) => l.status },
          {
            header: t('lots.price'),
            numeric: true,
            cell: (l) => (l.price === null ? '—' : formatMoney(l.price, l.currency, lang.value)),
          },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(
            api.GET('/api/v1/accounts/{userId}/lots', {
              params: { path: { userId }, query: { limit: 50, cursor } },
            }),
          )
        }
        deps={[userId, version]}
      />
    </>
  );
}

function Purchases({ userId }: { userId: string }) {
  return (
    <>
      <h2>{t('purchases.table')}</h2>
      <PagedTable
        caption={t('purchases.table')}
        rowKey={(p) => p.id}
        columns={[
          { header: t('common.created'), cell: (p) => formatTime(p.createdAt) },
          { header: t('purchases.provider'), cell: (p) => p.provider },
          { header: t('packages.name'), cell: (p) => p.package?.name ?? shortId(p.packageId) },
          { header: t('common.status'), cell: (p) => p.status },
          {
            header: t('purchases.credits'),
            numeric: true,
            cell: (p) => formatCredits(p.credits, lang.value),
          },
          {
            header: t('lots.price'),
            numeric: true,
            cell: (p) => formatMoney(p.price, p.currency, lang.value),
          },
          { header: t('common.id'), cell: (p) => <span title={p.id}>{shortId(p.id)}</span> },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(
            api.GET('/api/v1/accounts/{userId}/purchases', {
              params: { path: { userId }, query: { limit: 20, cursor, expand: ['package'] } },
            }),
          )
        }
        deps={[userId]}
      />
    </>
  );
}

function Holds({ userId, version, onChange }: { userId: string; version: number; onChange: () => void }) {
  const [releasing, setReleasing] = useState<Hold | null>(null);
  return (
    <>
      <h2>{t('holds.table')}</h2>
      <PagedTable
        caption={t('holds.table')}
        rowKey={(h) => h.id}
        columns={[
          { header: t('common.created'), cell: (h) => formatTime(h.createdAt) },
          {
            header: t('common.amount'),
            numeric: true,
            cell: (h) => formatCredits(h.amount, lang.value),
          },
          { header: t('common.status'), cell: (h) => h.status },
          { header: t('holds.expires'), cell: (h) => formatTime(h.expiresAt) },
          { header: t('common.reason'), cell: (h) => h.reason ?? '—' },
          can.value.debit && {
            header: t('common.actions'),
            cell: (h) =>
              h.status === 'active' ? (
                <button type="button" onClick={() => setReleasing(h)}>
                  {t('holds.release')}
                </button>
              ) : null,
          },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(
            api.GET('/api/v1/accounts/{userId}/holds', {
              params: { path: { userId }, query: { limit: 20, cursor } },
            }),
          )
        }
        deps={[userId, version]}
      />
      {releasing && (
        <Confirm
          message={t('holds.releaseConfirm', { id: shortId(releasing.id), amount: releasing.amount })}
          confirmLabel={t('holds.release')}
          onClose={() => setReleasing(null)}
          onConfirm={async () => {
            const result = await call(
              api.POST('/api/v1/accounts/{userId}/holds/{holdId}/release', {
                params: { path: { userId, holdId: releasing.id } },
              }),
            );
            if (!result.ok) return result.problem;
            onChange();
            return null;
          }}
        />
      )}
    </>
  );
}

function SyncRevenuecat({ userId, onChange }: { userId: string; onChange: () => void }) {
  const [asking, setAsking] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  return (
    <>
      <button type="button" onClick={() => setAsking(true)}>
        {t('account.sync')}
      </button>
      {done && <p role="status">{done}</p>}
      {asking && (
        <Confirm
          message={t('account.syncConfirm')}
          confirmLabel={t('account.sync')}
          onClose={() => setAsking(false)}
          onConfirm={async () => {
            const result = await call(
              api.POST('/api/v1/accounts/{userId}/revenuecat/sync', { params: { path: { userId } } }),
            );
            if (!result.ok) return result.problem;
            setDone(
              t('account.syncDone', {
                granted: result.data.granted.length,
                already: result.data.alreadyGranted,
                ignored: result.data.ignored,
              }),
            );
            onChange();
            return null;
          }}
        />
      )}
    </>
  );
}
