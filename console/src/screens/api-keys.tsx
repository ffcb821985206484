import { useState } from 'preact/hooks';
import { api, call, type Problem } from '../api/client.ts';
import type { operations } from '../api/openapi.gen.ts';
import { Confirm, PagedTable, ProblemBox, SecretOnce } from '../components/ui.tsx';
import { formatTime } from '../lib/format.ts';
import { can, t } from '../state.ts';

type Scope = operations['createApiKey']['requestBody']['content']['application/json']['scopes'][number];
const SCOPES: Scope[] = [
  'checkout:create',
  'credits:debit',
  'balances:read',
  'ledger:read',
  'packages:write',
];

function CreateKey({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Scope[]>([]);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  return (
    <form
      class="card"
      aria-label={t('keys.create')}
      onSubmit={async (e) => {
        e.preventDefault();
        const result = await call(
          api.POST('/api/v1/api-keys', {
            body: { name: name.trim(), scopes },
          }),
        );
        if (!result.ok) return setProblem(result.problem);
        setProblem(null);
        setCreated(result.data.key);
        setName('');
        setScopes([]);
        onCreated();
      }}
    >
      <h2>{t('keys.create')}</h2>
      <label>
        {t('keys.name')}
        <input type="text" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <fieldset>
        <legend>{t('keys.scopes')}</legend>
        {SCOPES.map((s) => (
          <label key={s} class="check">
            <input
              type="checkbox"
              checked={scopes.includes(s)}
              onChange={(e) =>
                setScopes(e.currentTarget.checked ? [...scopes, s] : scopes.filter((x) => x !== s))
              }
            />
            {s}
          </label>
        ))}
      </fieldset>
      {problem && <ProblemBox problem={problem} />}
      <button type="submit">{t('keys.create')}</button>
      {created && <SecretOnce label={t('keys.newKey')} value={created} />}
    </form>
  );
}

export function ApiKeysScreen() {
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  const [revoking, setRevoking] = useState<{ id: string; name: string } | null>(null);
  return (
    <section>
      <h1>{t('keys.title')}</h1>
      {can.value.admin && <CreateKey onCreated={reload} />}
      <PagedTable
        caption={t('keys.table')}
        rowKey={(k) => k.id}
        columns={[
          { header: t('keys.name'), cell: (k) => k.name },
          { header: t('keys.prefix'), cell: (k) => <span class="mono">{k.prefix}</span> },
          { header: t('keys.scopes'), cell: (k) => k.scopes.join(', ') },
          { header: t('common.created'), cell: (k) => formatTime(k.createdAt) },
          { header: t('keys.lastUsed'), cell: (k) => formatTime(k.lastUsedAt) },
          { header: t('keys.revoked'), cell: (k) => formatTime(k.revokedAt) },
          can.value.admin && {
            header: t('common.actions'),
            cell: (k) =>
              k.revokedAt ? null : (
                <button type="button" onClick={() => setRevoking({ id: k.id, name: k.name })}>
                  {t('keys.revoke')}
                </button>
              ),
          },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(api.GET('/api/v1/api-keys', { params: { query: { limit: 100, cursor } } }))
        }
        deps={[version]}
      />
      {revoking && (
        <Confirm
          message={t('keys.revokeConfirm', { name: revoking.name })}
          confirmLabel={t('keys.revoke')}
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            const result = await call(
              api.DELETE('/api/v1/api-keys/{id}', { params: { path: { id: revoking.id } } }),
            );
            if (!result.ok) return result.problem;
            reload();
            return null;
          }}
        />
      )}
    </section>
  );
}
