import { useState } from 'preact/hooks';
import { api, call, type Problem } from '../api/client.ts';
import type { components, operations } from '../api/openapi.gen.ts';
import { Confirm, PagedTable, ProblemBox, SecretOnce } from '../components/ui.tsx';
import { formatTime, shortId } from '../lib/format.ts';
import { can, t } from '../state.ts';

type Endpoint = components['schemas']['WebhookEndpoint'];
type CreateBody = operations['createWebhookEndpoint']['requestBody']['content']['application/json'];

function CreateEndpoint({ onCreated }: { onCreated: (secret: string) => void }) {
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState('*');
  const [description, setDescription] = useState('');
  const [thresholds, setThresholds] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  return (
    <form
      class="card"
      aria-label={t('hooks.create')}
      onSubmit={async (e) => {
        e.preventDefault();
        const levels = thresholds
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map(Number);
        const body = {
          url: url.trim(),
          events: events
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
          ...(description.trim() ? { description: description.trim() } : {}),
          ...(levels.length ? { lowBalanceThresholds: levels } : {}),
        } as CreateBody;
        const result = await call(api.POST('/api/v1/webhook-endpoints', { body }));
        if (!result.ok) return setProblem(result.problem);
        setProblem(null);
        setUrl('');
        onCreated(result.data.secret);
      }}
    >
      <h2>{t('hooks.create')}</h2>
      <label>
        {t('hooks.url')}
        <input type="url" required value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
      </label>
      <label>
        {t('hooks.events')}
        <input type="text" value={events} onInput={(e) => setEvents(e.currentTarget.value)} />
      </label>
      <label>
        {t('hooks.description')}
        <input type="text" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </label>
      <label>
        {t('hooks.thresholds')}
        <input type="text" value={thresholds} onInput={(e) => setThresholds(e.currentTarget.value)} />
      </label>
      {problem && <ProblemBox problem={problem} />}
      <button type="submit">{t('hooks.create')}</button>
    </form>
  );
}

function Deliveries({ endpoint }: { endpoint: Endpoint }) {
  const [message, setMessage] = useState<Problem | string | null>(null);
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  return (
    <>
      <h2>{t('hooks.deliveriesOf', { url: endpoint.url })}</h2>
      {typeof message === 'string' && <p role="status">{message}</p>}
      {message && typeof message !== 'string' && <ProblemBox problem={message} />}
      <PagedTable
        caption={t('hooks.deliveries')}
        rowKey={(d) => d.id}
        columns={[
          { header: t('common.created'), cell: (d) => formatTime(d.createdAt) },
          { header: t('common.type'), cell: (d) => d.eventType },
          { header: t('common.status'), cell: (d) => d.status },
          { header: t('hooks.attempts'), numeric: true, cell: (d) => d.attempts },
          { header: t('hooks.lastCode'), cell: (d) => d.lastStatusCode ?? d.lastError ?? '—' },
          { header: t('hooks.nextAttempt'), cell: (d) => formatTime(d.nextAttemptAt) },
          can.value.admin && {
            header: t('common.actions'),
            cell: (d) =>
              d.status === 'delivered' ? null : (
                <button
                  type="button"
                  onClick={async () => {
                    const result = await call(
                      api.POST('/api/v1/webhook-endpoints/{id}/deliveries/{deliveryId}/retry', {
                        params: { path: { id: endpoint.id, deliveryId: d.id } },
                      }),
                    );
                    setMessage(result.ok ? t('hooks.retried') : result.problem);
                    reload();
                  }}
                >
                  {t('hooks.retry')}
                </button>
              ),
          },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(
            api.GET('/api/v1/webhook-endpoints/{id}/deliveries', {
              params: { path: { id: endpoint.id }, query: { limit: 50, cursor } },
            }),
          )
        }
        deps={[endpoint.id, version]}
      />
    </>
  );
}

export function WebhooksScreen() {
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  const [secret, setSecret] = useState<string | null>(null);
  const [selected, setSelected] = useState<Endpoint | null>(null);
  const [asking, setAsking] = useState<{ endpoint: Endpoint; action: 'rotate' | 'delete' } | null>(null);
  return (
    <section>
      <h1>{t('hooks.title')}</h1>
      {can.value.admin && (
        <CreateEndpoint
          onCreated={(s) => {
            setSecret(s);
            reload();
          }}
        />
      )}
      {secret && <SecretOnce label={t('hooks.secret')} value={secret} />}
      <h2>{t('hooks.table')}</h2>
      <PagedTable
        caption={t('hooks.table')}
        rowKey={(e) => e.id}
        columns={[
          { header: t('hooks.url'), cell: (e) => e.url },
          { header: t('nav.events'), cell: (e) => e.events.join(', ') },
          { header: t('hooks.description'), cell: (e) => e.description ?? '—' },
          { header: t('hooks.disabled'), cell: (e) => (e.disabled ? t('common.yes') : t('common.no')) },
          {
            header: t('common.actions'),
            cell: (e) => (
              <>
                <button
                  type="button"
                  aria-label={`${t('hooks.deliveries')} ${shortId(e.id)}`}
                  onClick={() => setSelected(e)}
                >
                  {t('hooks.deliveries')}
                </button>{' '}
                {can.value.admin && (
                  <>
                    <button type="button" onClick={() => setAsking({ endpoint: e, action: 'rotate' })}>
                      {t('hooks.rotate')}
                    </button>{' '}
                    <button type="button" onClick={() => setAsking({ endpoint: e, action: 'delete' })}>
                      {t('hooks.delete')}
                    </button>
                  </>
                )}
              </>
            ),
          },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(api.GET('/api/v1/webhook-endpoints', { params: { query: { limit: 100, cursor } } }))
        }
        deps={[version]}
      />
      {selected && <Deliveries key={selected.id} endpoint={selected} />}
      {asking && (
        <Confirm
          message={t(asking.action === 'rotate' ? 'hooks.rotateConfirm' : 'hooks.deleteConfirm', {
            url: asking.endpoint.url,
          })}
          confirmLabel={t(asking.action === 'rotate' ? 'hooks.rotate' : 'hooks.delete')}
          onClose={() => setAsking(null)}
          onConfirm={async () => {
            const id = asking.endpoint.id;
            if (asking.action === 'rotate') {
              const result = await call(
                api.POST('/api/v1/webhook-endpoints/{id}/rotate-secret', { params: { path: { id } } }),
              );
              if (!result.ok) return result.problem;
              setSecret(result.data.secret);
            } else {
              const result = await call(
                api.DELETE('/api/v1/webhook-endpoints/{id}', { params: { path: { id } } }),
              );
              if (!result.ok) return result.problem;
              if (selected?.id === id) setSelected(null);
            }
            reload();
            return null;
          }}
        />
      )}
    </section>
  );
}
