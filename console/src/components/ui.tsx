import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks';
import type { Problem, Result } from '../api/client.ts';
import { t } from '../state.ts';
import { href, navigate } from '../router.ts';

/** A link inside the console: a real href (open in a new tab works), navigated without a reload. */
export function Link(props: {
  to: string;
  children: ComponentChildren;
  'aria-current'?: 'page';
  'aria-label'?: string;
}) {
  const { to, children } = props;
  return (
    <a
      aria-current={props['aria-current']}
      aria-label={props['aria-label']}
      href={href(to)}
      onClick={(event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

/** A failed request said in words: the envelope's errors, and what the status means. */
export function ProblemBox({ problem }: { problem: Problem }) {
  const headline =
    problem.status === 0
      ? t('error.unreachable')
      : problem.status === 403
        ? t('error.forbidden')
        : problem.status === 401
          ? t('error.unauthorized')
          : problem.status === 404 && problem.messages.some((m) => m.includes('/api/v1/'))
            ? t('error.missingRoute')
            : problem.status < 300
              ? null
              : t('error.generic', { status: problem.status });
  return (
    <div class="problem" role="alert">
      {headline && <p>{headline}</p>}
      {problem.messages.length > 0 && (
        <ul>
          {problem.messages.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export type Load<T> = { state: 'loading' } | { state: 'ok'; data: T } | { state: 'error'; problem: Problem };

/** Runs `fetcher` when `deps` change; `reload` runs it again. The newest answer wins. */
export function useLoad<T>(fetcher: () => Promise<Result<T>>, deps: unknown[]): [Load<T>, () => void] {
  const [load, setLoad] = useState<Load<T>>({ state: 'loading' });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    setLoad((previous) => (previous.state === 'ok' ? previous : { state: 'loading' }));
    fetcher().then((result) => {
      if (!current) return;
      setLoad(result.ok ? { state: 'ok', data: result.data } : { state: 'error', problem: result.problem });
    });
    return () => {
      current = false;
    };
  }, [...deps, generation]);
  return [load, useCallback(() => setGeneration((g) => g + 1), [])];
}

/** Shows a Load: a message while loading, the problem on failure, `children(data)` otherwise. */
export function Loaded<T>({ load, children }: { load: Load<T>; children: (data: T) => ComponentChildren }) {
  if (load.state === 'loading') return <p class="muted">{t('common.loading')}</p>;
  if (load.state === 'error') return <ProblemBox problem={load.problem} />;
  return <>{children(load.data)}</>;
}

export interface Column<R> {
  header: string;
  cell: (row: R) => ComponentChildren;
  numeric?: boolean;
}

/** A table named by its caption (screen readers and the tests find it by that name). */
export function Table<R>(props: {
  caption: string;
  columns: readonly (Column<R> | false)[];
  rows: readonly R[];
  rowKey: (row: R) => string;
}) {
  const columns = props.columns.filter((c): c is Column<R> => c !== false);
  return (
    <div class="table-wrap">
      <table>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.header} scope="col" class={c.numeric ? 'num' : undefined}>
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} class="muted">
                {t('common.none')}
              </td>
            </tr>
          ) : (
            props.rows.map((row) => (
              <tr key={props.rowKey(row)}>
                {columns.map((c) => (
                  <td key={c.header} class={c.numeric ? 'num' : undefined}>
                    {c.cell(row)}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

/**
 * One page of a list route in a table, with "First page" and "Next page" (keyset cursors, no OFFSET).
 * `fetchPage` is asked again, from the first page, whenever something in `deps` changes (filters, or a
 * counter bumped after an action).
 */
export function PagedTable<R>(props: {
  caption: string;
  fetchPage: (cursor: string | undefined) => Promise<Result<{ items: R[]; nextCursor: string | null }>>;
  deps: unknown[];
  columns: readonly (Column<R> | false)[];
  rowKey: (row: R) => string;
}) {
  const pager = usePager(props.deps);
  const [load] = useLoad(() => props.fetchPage(pager.cursor), [...props.deps, pager.cursor]);
  return (
    <Loaded load={load}>
      {(page) => (
        <>
          <Table caption={props.caption} columns={props.columns} rows={page.items} rowKey={props.rowKey} />
          {pager.controls(page.nextCursor)}
        </>
      )}
    </Loaded>
  );
}

/**
 * Keyset paging: the cursors of the pages seen so far, so "Next page" and "First page" work without OFFSET.
 */
function usePager(resetOn: unknown[]) {
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  useEffect(() => setCursor(undefined), resetOn);
  return {
    cursor,
    controls: (nextCursor: string | null) => (
      <div class="pager">
        <button type="button" disabled={cursor === undefined} onClick={() => setCursor(undefined)}>
          {t('common.first')}
        </button>
        <button type="button" disabled={!nextCursor} onClick={() => nextCursor && setCursor(nextCursor)}>
          {t('common.next')}
        </button>
      </div>
    ),
  };
}

/**
 * A confirmation in a modal <dialog>: every destructive action goes through one. `confirmLabel` names the
 * action ("Reverse"); `onConfirm` returns a Problem to show, or null when done (the dialog closes).
 */
export function Confirm(props: {
  message: string;
  confirmLabel: string;
  onConfirm: () => Promise<Problem | null>;
  onClose: () => void;
  children?: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const titleId = useId();
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={titleId} onClose={props.onClose}>
      <form
        method="dialog"
        onSubmit={async (event) => {
          event.preventDefault();
          if (busy) return;
          setBusy(true);
          const result = await props.onConfirm();
          setBusy(false);
          if (result) setProblem(result);
          else ref.current?.close();
        }}
      >
        <h2 id={titleId}>{t('confirm.title')}</h2>
        <p>{props.message}</p>
        {props.children}
        {problem && <ProblemBox problem={problem} />}
        <div class="actions">
          <button type="submit" class="danger" disabled={busy}>
            {props.confirmLabel}
          </button>
          <button type="button" onClick={() => ref.current?.close()}>
            {t('common.cancel')}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** A secret the API shows once (a new API key, a webhook secret), with Copy. */
export function SecretOnce({ label, value }: { label: string; value: string }) {
  const [copied, setCopied] = useState(false);
  const id = useId();
  return (
    <div class="secret" role="status">
      <label for={id}>{label}</label>
      <output id={id} class="mono">
        {value}
      </output>
      <p class="muted">{t('common.shownOnce')}</p>
      <button
        type="button"
        onClick={async () => {
          await navigator.clipboard?.writeText(value).catch(() => {});
          setCopied(true);
        }}
      >
        {copied ? t('common.copied') : t('common.copy')}
      </button>
    </div>
  );
}

/** A labelled figure (Balance, Available, Held): `getByLabel('Balance')` finds its value. */
export function Figure({ label, value }: { label: string; value: string }) {
  const id = useId();
  return (
    <div class="figure">
      <label for={id}>{label}</label>
      <output id={id}>{value}</output>
    </div>
  );
}
