import { useMemo, useState } from 'preact/hooks';
import { api, call, downloadCsv, type Problem } from '../api/client.ts';
import { Chart } from '../components/chart.tsx';
import { Loaded, ProblemBox, Table, useLoad } from '../components/ui.tsx';
import { formatCredits, formatDay, formatMoney } from '../lib/format.ts';
import { csvFileName, lastDaysQuery, reportColumns, withQuery } from '../lib/query.ts';
import { lang, t } from '../state.ts';

type Interval = 'day' | 'week' | 'month';
const INTERVALS: Interval[] = ['day', 'week', 'month'];

const dayOf = (iso: string) => iso.slice(0, 10);
const startOf = (day: string) => new Date(`${day}T00:00:00.000Z`).toISOString();
/** The "To" day is inclusive for the operator; the API's `to` is exclusive. */
const endOf = (day: string) => new Date(Date.parse(`${day}T00:00:00.000Z`) + 86_400_000).toISOString();

export function ReportsScreen() {
  const initial = useMemo(() => lastDaysQuery(30, new Date()), []);
  const [fromDay, setFrom] = useState(dayOf(initial.from));
  const [toDay, setTo] = useState(dayOf(new Date(Date.parse(initial.to) - 1).toISOString()));
  const [interval, setInterval] = useState<Interval>('day');
  const [query, setQuery] = useState<{ from: string; to: string; interval: Interval }>(initial);
  const [csvProblem, setCsvProblem] = useState<Problem | null>(null);
  const [load] = useLoad(() => call(api.GET('/api/v1/reports/credits', { params: { query } })), [query]);
  const series = useMemo(
    () => [{ label: t('reports.granted') }, { label: t('reports.debited') }],
    [lang.value],
  );
  const shaped = useMemo(() => (load.state === 'ok' ? reportColumns(load.data.items) : null), [load]);
  const money = (n: number, c: string | null) => formatMoney(n, c, lang.value);
  const credits = (n: number) => formatCredits(n, lang.value);
  return (
    <section>
      <h1>{t('reports.title')}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery({ from: startOf(fromDay), to: endOf(toDay), interval });
        }}
      >
        <label>
          {t('common.from')}
          <input type="date" required value={fromDay} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          {t('common.to')}
          <input type="date" required value={toDay} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <label>
          {t('interval.label')}
          <select value={interval} onChange={(e) => setInterval(e.currentTarget.value as Interval)}>
            {INTERVALS.map((i) => (
              <option key={i} value={i}>
                {i}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">{t('common.apply')}</button>
      </form>
      <button
        type="button"
        onClick={async () =>
          setCsvProblem(
            await downloadCsv(
              withQuery('/api/v1/reports/credits', query),
              csvFileName('credits-report', new Date()),
            ),
          )
        }
      >
        {t('common.exportCsv')}
      </button>
      {csvProblem && <ProblemBox problem={csvProblem} />}
      <Loaded load={load}>
        {(report) => (
          <>
            <h2>{t('reports.table')}</h2>
            {shaped && <Chart label={t('reports.chart')} columns={shaped.columns} series={series} />}
            <Table
              caption={t('reports.table')}
              rows={report.items}
              rowKey={(i) => `${i.at}/${i.currency}`}
              columns={[
                { header: t('reports.at'), cell: (i) => formatDay(i.at) },
                { header: t('reports.currency'), cell: (i) => i.currency ?? t('reports.noCurrency') },
                { header: t('reports.granted'), numeric: true, cell: (i) => credits(i.credits.granted) },
                { header: t('reports.debited'), numeric: true, cell: (i) => credits(i.credits.debited) },
                {
                  header: t('reports.debitReversed'),
                  numeric: true,
                  cell: (i) => credits(i.credits.debitReversed),
                },
                {
                  header: t('reports.clawedBack'),
                  numeric: true,
                  cell: (i) => credits(i.credits.clawedBack),
                },
                { header: t('reports.expired'), numeric: true, cell: (i) => credits(i.credits.expired) },
                {
                  header: t('reports.outstanding'),
                  numeric: true,
                  cell: (i) => credits(i.credits.outstanding),
                },
                { header: t('reports.sold'), numeric: true, cell: (i) => money(i.money.sold, i.currency) },
                {
                  header: t('reports.recognized'),
                  numeric: true,
                  cell: (i) => money(i.money.recognized, i.currency),
                },
                {
                  header: t('reports.breakage'),
                  numeric: true,
                  cell: (i) => money(i.money.breakage, i.currency),
                },
                {
                  header: t('reports.moneyClawedBack'),
                  numeric: true,
                  cell: (i) => money(i.money.clawedBack, i.currency),
                },
                {
                  header: t('reports.deferred'),
                  numeric: true,
                  cell: (i) => money(i.money.deferred, i.currency),
                },
              ]}
            />
          </>
        )}
      </Loaded>
    </section>
  );
}
