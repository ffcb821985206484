import { useId, useState } from 'preact/hooks';
import { api, call } from '../api/client.ts';
import { LanguageSwitch } from '../components/language.tsx';
import { describeCredential } from '../lib/credential.ts';
import { signIn, signInNotice, t } from '../state.ts';

/**
 * Which scopes an API key holds, asked of the service without changing anything: a GET that needs
 * packages:write, and a debit with no body and no Idempotency-Key, which the service refuses with 403 before
 * validation when the scope is missing and with 400 (nothing written) when it is there.
 */
async function probeScopes(bearer: string): Promise<string[]> {
  const headers = { authorization: `Bearer ${bearer}` };
  const [packages, debit] = await Promise.all([
    fetch('/api/v1/credit-packages?includeInactive=true&limit=1', { headers }).catch(() => undefined),
    fetch('/api/v1/accounts/console-scope-probe/debits', { method: 'POST', headers }).catch(() => undefined),
  ]);
  const found: string[] = [];
  if (packages?.status === 200) found.push('packages:write');
  if (debit?.status === 400) found.push('credits:debit');
  return found;
}

export function SignIn() {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();
  const notice = signInNotice.value;

  async function submit(event: Event) {
    event.preventDefault();
    const candidate = value.trim();
    if (!candidate) return setError(t('signIn.empty'));
    setBusy(true);
    setError(null);
    // Any route operators use: 401 means the token is refused; 200 or 403 mean it is valid.
    const result = await call(
      api.GET('/api/v1/accounts', {
        params: { query: { limit: 1 } },
        headers: { authorization: `Bearer ${candidate}` },
      }),
      { signOutOn401: false },
    );
    if (!result.ok && result.problem.status !== 403) {
      setBusy(false);
      return setError(
        result.problem.status === 0
          ? t('error.unreachable')
          : t('signIn.refused', {
              reason: result.problem.messages.join(' ') || String(result.problem.status),
            }),
      );
    }
    const credential = describeCredential(candidate);
    if (credential.kind === 'jwt' && !credential.roles.some((r) => r === 'admin' || r === 'ops')) {
      setBusy(false);
      return setError(t('signIn.noRole'));
    }
    const scopes = credential.kind === 'apiKey' ? await probeScopes(candidate) : [];
    setBusy(false);
    signIn(candidate, scopes);
  }

  return (
    <main class="sign-in">
      <div class="sign-in-top">
        <LanguageSwitch />
      </div>
      <h1>{t('app.title')}</h1>
      <form onSubmit={submit}>
        <h2>{t('signIn.title')}</h2>
        {notice && (
          <p class="notice" role="status">
            {notice}
          </p>
        )}
        <label for={id}>{t('signIn.token')}</label>
        <input
          id={id}
          type="password"
          autoComplete="off"
          spellcheck={false}
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
          aria-describedby={`${id}-hint`}
        />
        <p id={`${id}-hint`} class="muted">
          {t('signIn.hint')}
        </p>
        {error && (
          <p class="problem" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {t('signIn.submit')}
        </button>
      </form>
    </main>
  );
}
