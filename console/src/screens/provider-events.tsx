import { useId, useState } from 'preact/hooks';
import { api, call } from '../api/client.ts';
import type { components } from '../api/openapi.gen.ts';
import { Confirm, Link, Loaded, PagedTable, useLoad } from '../components/ui.tsx';
import { formatJson, formatTime, shortId } from '../lib/format.ts';
import { route } from '../router.ts';
import { can, t } from '../state.ts';

type ProviderEvent = components['schemas']['ProviderEvent'];
type Provider = ProviderEvent['provider'];
type Status = ProviderEvent['status'];
const PROVIDERS: Provider[] = ['stripe', 'revenuecat'];
const STATUSES: Status[] = ['processed', 'ignored', 'parked', 'failed'];
const REPLAYABLE: readonly Status[] = ['parked', 'ignored', 'failed'];

interface Filters {
  provider: Provider | '';
  status: Status | '';
  type: string;
  userId: string;
}

function fromAddress(): Filters {
  const q = route.value.query;
  const pick = <T extends string>(value: string | null, allowed: readonly T[]) =>
    allowed.includes(value as T) ? (value as T) : '';
  return {
    provider: pick(q.get('provider'), PROVIDERS),
    status: pick(q.get('status'), STATUSES),
    type: q.get('type') ?? '',
    userId: q.get('userId') ?? '',
  };
}

/** Replay with confirmation; `onDone` gets the new outcome. */
function ReplayButton({ event, onDone }: { event: ProviderEvent; onDone: (status: string) => void }) {
  const [asking, setAsking] = useState(false);
  if (!can.value.admin || !REPLAYABLE.includes(event.status)) return null;
  return (
    <>
      <button type="button" onClick={() => setAsking(true)}>
        {t('pe.replay')}
      </button>
      {asking && (
        <Confirm
          message={t('pe.replayConfirm', { id: event.eventId })}
          confirmLabel={t('pe.replay')}
          onClose={() => setAsking(false)}
          onConfirm={async () => {
            const result = await call(
              api.POST('/api/v1/provider-events/{id}/replay', { params: { path: { id: event.id } } }),
            );
            if (!result.ok) return result.problem;
            onDone(result.data.status);
            return null;
          }}
        />
      )}
    </>
  );
}

export function ProviderEventsScreen() {
  const [draft, setDraft] = useState<Filters>(fromAddress);
  const [filters, setFilters] = useState<Filters>(draft);
  const [message, setMessage] = useState<string | null>(null);
  const ids = { provider: useId(), status: useId(), type: useId(), user: useId() };
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  return (
    <section>
      <h1>{t('pe.title')}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        <label for={ids.provider}>{t('pe.provider')}</label>
        <select
          id={ids.provider}
          value={draft.provider}
          onChange={(e) => setDraft({ ...draft, provider: e.currentTarget.value as Provider | '' })}
        >
          <option value="">{t('common.all')}</option>
          {PROVIDERS.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
        <label for={ids.status}>{t('common.status')}</label>
        <select
          id={ids.status}
          value={draft.status}
          onChange={(e) => setDraft({ ...draft, status: e.currentTarget.value as Status | '' })}
        >
          <option value="">{t('common.all')}</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <label for={ids.type}>{t('common.type')}</label>
        <input
          id={ids.type}
          type="text"
          value={draft.type}
          onInput={(e) => setDraft({ ...draft, type: e.currentTarget.value })}
        />
        <label for={ids.user}>{t('common.user')}</label>
        <input
          id={ids.user}
          type="text"
          value={draft.userId}
          onInput={(e) => setDraft({ ...draft, userId: e.currentTarget.value })}
        />
        <button type="submit">{t('common.apply')}</button>
      </form>
      {message && <p role="status">{message}</p>}
      <PagedTable
        caption={t('pe.table')}
        rowKey={(e) => e.id}
        columns={[
          { header: t('pe.received'), cell: (e) => formatTime(e.receivedAt) },
          { header: t('pe.provider'), cell: (e) => e.provider },
          { header: t('common.type'), cell: (e) => e.type },
          { header: t('common.status'), cell: (e) => e.status },
          {
            header: t('common.user'),
            cell: (e) =>
              e.userId ? <Link to={`/accounts/${encodeURIComponent(e.userId)}`}>{e.userId}</Link> : '—',
          },
          { header: t('pe.note'), cell: (e) => e.note ?? e.waitingFor ?? '—' },
          {
            header: t('common.actions'),
            cell: (e) => (
              <>
                <Link
                  to={`/provider-events/${encodeURIComponent(e.id)}`}
                  aria-label={`${t('common.view')} ${e.eventId}`}
                >
                  {t('common.view')}
                </Link>{' '}
                <ReplayButton
                  event={e}
                  onDone={(status) => {
                    setMessage(t('pe.replayed', { status }));
                    reload();
                  }}
                />
              </>
            ),
          },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(
            api.GET('/api/v1/provider-events', {
              params: {
                query: {
                  limit: 50,
                  cursor,
                  ...(filters.provider ? { provider: filters.provider } : {}),
                  ...(filters.status ? { status: filters.status } : {}),
                  ...(filters.type.trim() ? { type: filters.type.trim() } : {}),
                  ...(filters.userId.trim() ? { userId: filters.userId.trim() } : {}),
                },
              },
            }),
          )
        }
        deps={[filters, version]}
      />
    </section>
  );
}

export function ProviderEventScreen({ id }: { id: string }) {
  const [message, setMessage] = useState<string | null>(null);
  const [load, reload] = useLoad(
    () => call(api.GET('/api/v1/provider-events/{id}', { params: { path: { id } } })),
    [id],
  );
  return (
    <section>
      <p>
        <Link to="/provider-events">{t('pe.back')}</Link>
      </p>
      <Loaded load={load}>
        {(e) => (
          <>
            <h1>{t('pe.event', { id: e.eventId })}</h1>
            <dl class="facts">
              <dt>{t('pe.provider')}</dt>
              <dd>{e.provider}</dd>
              <dt>{t('common.type')}</dt>
              <dd>{e.type}</dd>
              <dt>{t('common.status')}</dt>
              <dd>{e.status}</dd>
              <dt>{t('common.user')}</dt>
              <dd>
                {e.userId ? <Link to={`/accounts/${encodeURIComponent(e.userId)}`}>{e.userId}</Link> : '—'}
              </dd>
              <dt>{t('pe.note')}</dt>
              <dd>{e.note ?? '—'}</dd>
              <dt>{t('pe.waitingFor')}</dt>
              <dd>{e.waitingFor ?? '—'}</dd>
              <dt>{t('pe.attempts')}</dt>
              <dd>{e.attempts}</dd>
              <dt>{t('pe.received')}</dt>
              <dd>{formatTime(e.receivedAt)}</dd>
              <dt>{t('common.id')}</dt>
              <dd title={e.id}>{shortId(e.id, 40)}</dd>
            </dl>
            {message && <p role="status">{message}</p>}
            <ReplayButton
              event={e}
              onDone={(status) => {
                setMessage(t('pe.replayed', { status }));
                reload();
              }}
            />
            <h2>{t('pe.payload')}</h2>
            <pre class="payload">{formatJson(e.payload)}</pre>
          </>
        )}
      </Loaded>
    </section>
  );
}
