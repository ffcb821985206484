import { useState } from 'preact/hooks';
import { api, call, type Problem } from '../api/client.ts';
import type { components } from '../api/openapi.gen.ts';
import { Confirm, PagedTable, ProblemBox } from '../components/ui.tsx';
import { formatCredits, formatMoney } from '../lib/format.ts';
import { can, lang, t } from '../state.ts';

type Package = components['schemas']['Package'];

interface Draft {
  name: string;
  description: string;
  credits: string;
  price: string;
  currency: string;
  creditExpiryDays: string;
  revenuecatProductIds: string;
  stripePriceId: string;
}

const EMPTY: Draft = {
  name: '',
  description: '',
  credits: '',
  price: '',
  currency: 'usd',
  creditExpiryDays: '',
  revenuecatProductIds: '',
  stripePriceId: '',
};

const draftOf = (p: Package): Draft => ({
  name: p.name,
  description: p.description ?? '',
  credits: String(p.credits),
  price: String(p.price),
  currency: p.currency,
  creditExpiryDays: p.creditExpiryDays === null ? '' : String(p.creditExpiryDays),
  revenuecatProductIds: p.revenuecatProductIds.join(', '),
  stripePriceId: p.stripePriceId ?? '',
});

/** The form's text as the API's body; numbers the service validates (a bad one is its 400, in words). */
function bodyOf(d: Draft) {
  const int = (s: string) => (s.trim() === '' ? Number.NaN : Number(s));
  return {
    name: d.name.trim(),
    description: d.description.trim() || null,
    credits: int(d.credits),
    price: int(d.price),
    currency: d.currency.trim().toLowerCase(),
    creditExpiryDays: d.creditExpiryDays.trim() === '' ? null : int(d.creditExpiryDays),
    revenuecatProductIds: d.revenuecatProductIds
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    stripePriceId: d.stripePriceId.trim() || null,
  };
}

function PackageForm(props: { editing: Package | null; onSaved: () => void; onCancel: () => void }) {
  const [draft, setDraft] = useState<Draft>(props.editing ? draftOf(props.editing) : EMPTY);
  const [problem, setProblem] = useState<Problem | null>(null);
  const field = (key: keyof Draft, label: string, numeric = false) => {
    const common = {
      value: draft[key],
      onInput: (e: Event) => setDraft({ ...draft, [key]: (e.currentTarget as HTMLInputElement).value }),
      required: key === 'name' || key === 'credits' || key === 'price' || key === 'currency',
    };
    return numeric ? (
      <label>
        {label}
        <input type="number" {...common} />
      </label>
    ) : (
      <label>
        {label}
        <input type="text" {...common} />
      </label>
    );
  };
  const title = props.editing ? t('packages.editing', { name: props.editing.name }) : t('packages.create');
  return (
    <form
      class="card"
      aria-label={title}
      onSubmit={async (e) => {
        e.preventDefault();
        const body = bodyOf(draft);
        const result = props.editing
          ? await call(
              api.PUT('/api/v1/credit-packages/{id}', { params: { path: { id: props.editing.id } }, body }),
            )
          : await call(api.POST('/api/v1/credit-packages', { body }));
        if (!result.ok) return setProblem(result.problem);
        setProblem(null);
        setDraft(EMPTY);
        props.onSaved();
      }}
    >
      <h2>{title}</h2>
      {field('name', t('packages.name'))}
      {field('description', t('packages.description'))}
      {field('credits', t('packages.credits'), true)}
      {field('price', t('packages.price'), true)}
      {field('currency', t('packages.currency'))}
      {field('creditExpiryDays', t('packages.expiryDays'), true)}
      {field('revenuecatProductIds', t('packages.rcProducts'))}
      {field('stripePriceId', t('packages.stripePrice'))}
      {problem && <ProblemBox problem={problem} />}
      <div class="actions">
        <button type="submit">{props.editing ? t('common.save') : t('packages.create')}</button>
        {props.editing && (
          <button type="button" onClick={props.onCancel}>
            {t('common.cancel')}
          </button>
        )}
      </div>
    </form>
  );
}

export function PackagesScreen() {
  const writer = can.value.packagesWrite;
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  const [editing, setEditing] = useState<Package | null>(null);
  const [asking, setAsking] = useState<{ pkg: Package; action: 'deactivate' | 'delete' } | null>(null);
  return (
    <section>
      <h1>{t('packages.title')}</h1>
      <PagedTable
        caption={t('packages.table')}
        rowKey={(p) => p.id}
        columns={[
          { header: t('packages.name'), cell: (p) => p.name },
          {
            header: t('packages.credits'),
            numeric: true,
            cell: (p) => formatCredits(p.credits, lang.value),
          },
          {
            header: t('lots.price'),
            numeric: true,
            cell: (p) => formatMoney(p.price, p.currency, lang.value),
          },
          {
            header: t('packages.active'),
            cell: (p) => (p.isActive ? t('common.yes') : t('common.no')),
          },
          {
            header: t('packages.expiryDays'),
            numeric: true,
            cell: (p) => (p.creditExpiryDays === null ? t('common.never') : p.creditExpiryDays),
          },
          { header: t('packages.rcProducts'), cell: (p) => p.revenuecatProductIds.join(', ') || '—' },
          writer && {
            header: t('common.actions'),
            cell: (p) => (
              <>
                <button type="button" onClick={() => setEditing(p)}>
                  {t('packages.edit')}
                </button>{' '}
                {p.isActive && (
                  <button type="button" onClick={() => setAsking({ pkg: p, action: 'deactivate' })}>
                    {t('packages.deactivate')}
                  </button>
                )}{' '}
                <button type="button" onClick={() => setAsking({ pkg: p, action: 'delete' })}>
                  {t('packages.delete')}
                </button>
              </>
            ),
          },
        ]}
        fetchPage={(cursor: string | undefined) =>
          call(
            api.GET('/api/v1/credit-packages', {
              params: {
                query: { limit: 100, cursor, ...(writer ? { includeInactive: true } : {}) },
              },
            }),
          )
        }
        deps={[writer, version]}
      />
      {writer && (
        <PackageForm
          key={editing?.id ?? 'new'}
          editing={editing}
          onSaved={() => {
            setEditing(null);
            reload();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
      {asking && (
        <Confirm
          message={t(asking.action === 'delete' ? 'packages.deleteConfirm' : 'packages.deactivateConfirm', {
            name: asking.pkg.name,
          })}
          confirmLabel={t(asking.action === 'delete' ? 'packages.delete' : 'packages.deactivate')}
          onClose={() => setAsking(null)}
          onConfirm={async () => {
            const id = asking.pkg.id;
            const result =
              asking.action === 'delete'
                ? await call(api.DELETE('/api/v1/credit-packages/{id}', { params: { path: { id } } }))
                : await call(
                    api.PUT('/api/v1/credit-packages/{id}', {
                      params: { path: { id } },
                      body: { isActive: false },
                    }),
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
