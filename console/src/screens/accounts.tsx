import { useId, useState } from 'preact/hooks';
import { api, call } from '../api/client.ts';
import { Link, PagedTable } from '../components/ui.tsx';
import { formatCredits, formatTime } from '../lib/format.ts';
import { lang, t } from '../state.ts';

export function AccountsScreen() {
  const [typed, setTyped] = useState('');
  const [prefix, setPrefix] = useState('');
  const id = useId();
  return (
    <section>
      <h1>{t('accounts.title')}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setPrefix(typed.trim());
        }}
      >
        <label for={id}>{t('accounts.search')}</label>
        <input id={id} type="search" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
        <button type="submit">{t('accounts.searchButton')}</button>
      </form>
      <PagedTable
        caption={t('accounts.table')}
        rowKey={(a) => a.userId}
        columns={[
          {
            header: t('common.user'),
            cell: (a) => <Link to={`/accounts/${encodeURIComponent(a.userId)}`}>{a.userId}</Link>,
          },
          {
            header: t('account.balance'),
            numeric: true,
            cell: (a) => formatCredits(a.balance, lang.value),
          },
          {
            header: t('account.available'),
            numeric: true,
            cell: (a) => formatCredits(a.available, lang.value),
          },
          { header: t('account.held'), numeric: true, cell: (a) => formatCredits(a.held, lang.value) },
          { header: t('common.updated'), cell: (a) => formatTime(a.updatedAt) },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(
            api.GET('/api/v1/accounts', {
              params: { query: { limit: 50, cursor, ...(prefix ? { prefix } : {}) } },
            }),
          )
        }
        deps={[prefix]}
      />
    </section>
  );
}
