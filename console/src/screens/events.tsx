import { api, call } from '../api/client.ts';
import { PagedTable } from '../components/ui.tsx';
import { formatJson, formatTime } from '../lib/format.ts';
import { t } from '../state.ts';

export function EventsScreen() {
  return (
    <section>
      <h1>{t('events.title')}</h1>
      <PagedTable
        caption={t('events.table')}
        rowKey={(e) => e.id}
        columns={[
          { header: t('common.created'), cell: (e) => formatTime(e.createdAt) },
          { header: t('common.type'), cell: (e) => e.type },
          { header: t('common.id'), cell: (e) => <span class="mono">{e.id}</span> },
          {
            header: t('events.data'),
            cell: (e) => (
              <details>
                <summary>{t('events.data')}</summary>
                <pre class="payload">{formatJson(e.data)}</pre>
              </details>
            ),
          },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(api.GET('/api/v1/events', { params: { query: { limit: 50, cursor } } }))
        }
        deps={[]}
      />
    </section>
  );
}
