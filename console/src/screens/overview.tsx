import { useMemo } from 'preact/hooks';
import { api, call, type Result } from '../api/client.ts';
import { Chart } from '../components/chart.tsx';
import { Figure, Link, Loaded, useLoad } from '../components/ui.tsx';
import { formatCredits } from '../lib/format.ts';
import { lastDaysQuery, reportColumns } from '../lib/query.ts';
import { lang, t } from '../state.ts';

/** "100+" when there is another page: the overview counts at most one page of each list. */
const count = (page: { items: unknown[]; nextCursor: string | null }) =>
  page.nextCursor ? `${page.items.length}+` : String(page.items.length);

async function failingDeliveries(): Promise<Result<{ total: number; more: boolean }>> {
  const endpoints = await call(api.GET('/api/v1/webhook-endpoints', { params: { query: { limit: 100 } } }));
  if (!endpoints.ok) return endpoints;
  const pages = await Promise.all(
    endpoints.data.items.map((e) =>
      call(
        api.GET('/api/v1/webhook-endpoints/{id}/deliveries', {
          params: { path: { id: e.id }, query: { status: 'failed', limit: 100 } },
        }),
      ),
    ),
  );
  let total = 0;
  let more = endpoints.data.nextCursor !== null;
  for (const page of pages) {
    if (!page.ok) return page;
    total += page.data.items.length;
    more ||= page.data.nextCursor !== null;
  }
  return { ok: true, data: { total, more }, status: 200 };
}

export function OverviewScreen() {
  const query = useMemo(() => lastDaysQuery(30, new Date()), []);
  const [report] = useLoad(() => call(api.GET('/api/v1/reports/credits', { params: { query } })), [query]);
  const [parked] = useLoad(
    () => call(api.GET('/api/v1/provider-events', { params: { query: { status: 'parked', limit: 100 } } })),
    [],
  );
  const [failed] = useLoad(
    () => call(api.GET('/api/v1/provider-events', { params: { query: { status: 'failed', limit: 100 } } })),
    [],
  );
  const [deliveries] = useLoad(failingDeliveries, []);
  const shaped = useMemo(() => (report.state === 'ok' ? reportColumns(report.data.items) : null), [report]);
  const series = useMemo(
    () => [{ label: t('overview.granted') }, { label: t('overview.debited') }],
    [lang.value],
  );

  return (
    <section>
      <h1>{t('overview.title')}</h1>
      <div class="figures">
        <Loaded load={report}>
          {() => (
            <Figure
              label={t('overview.outstanding')}
              value={
                shaped?.outstanding === null || !shaped ? '—' : formatCredits(shaped.outstanding, lang.value)
              }
            />
          )}
        </Loaded>
        <Loaded load={parked}>{(page) => <Figure label={t('overview.parked')} value={count(page)} />}</Loaded>
        <Loaded load={failed}>{(page) => <Figure label={t('overview.failed')} value={count(page)} />}</Loaded>
        <Loaded load={deliveries}>
          {(d) => <Figure label={t('overview.failingDeliveries')} value={`${d.total}${d.more ? '+' : ''}`} />}
        </Loaded>
      </div>
      <p>
        <Link to="/provider-events?status=parked">{t('overview.parked')}</Link> ·{' '}
        <Link to="/webhooks">{t('overview.failingDeliveries')}</Link>
      </p>
      <h2>{t('overview.chart')}</h2>
      {shaped && <Chart label={t('overview.chart')} columns={shaped.columns} series={series} />}
    </section>
  );
}
