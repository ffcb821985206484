import type { ComponentChildren } from 'preact';
import { LanguageSwitch } from './components/language.tsx';
import { Link } from './components/ui.tsx';
import type { MessageKey } from './lib/i18n.ts';
import { match, route } from './router.ts';
import { AccountScreen } from './screens/account.tsx';
import { AccountsScreen } from './screens/accounts.tsx';
import { ApiKeysScreen } from './screens/api-keys.tsx';
import { EventsScreen } from './screens/events.tsx';
import { OverviewScreen } from './screens/overview.tsx';
import { PackagesScreen } from './screens/packages.tsx';
import { ProviderEventScreen, ProviderEventsScreen } from './screens/provider-events.tsx';
import { ReportsScreen } from './screens/reports.tsx';
import { SignIn } from './screens/sign-in.tsx';
import { WebhooksScreen } from './screens/webhooks.tsx';
import { can, credential, signOut, t, token } from './state.ts';

const NAV: readonly [string, MessageKey][] = [
  ['/', 'nav.overview'],
  ['/accounts', 'nav.accounts'],
  ['/provider-events', 'nav.providerEvents'],
  ['/packages', 'nav.packages'],
  ['/api-keys', 'nav.apiKeys'],
  ['/webhooks', 'nav.webhooks'],
  ['/events', 'nav.events'],
  ['/reports', 'nav.reports'],
];

const SCREENS: readonly [string, (params: Record<string, string>) => ComponentChildren][] = [
  ['/', () => <OverviewScreen />],
  ['/accounts', () => <AccountsScreen />],
  ['/accounts/:userId', (p) => <AccountScreen key={p.userId} userId={p.userId ?? ''} />],
  ['/provider-events', () => <ProviderEventsScreen />],
  ['/provider-events/:id', (p) => <ProviderEventScreen key={p.id} id={p.id ?? ''} />],
  ['/packages', () => <PackagesScreen />],
  ['/api-keys', () => <ApiKeysScreen />],
  ['/webhooks', () => <WebhooksScreen />],
  ['/events', () => <EventsScreen />],
  ['/reports', () => <ReportsScreen />],
];

function screenFor(path: string): ComponentChildren {
  for (const [pattern, screen] of SCREENS) {
    const params = match(pattern, path);
    if (params) return screen(params);
  }
  return <p role="alert">{t('notFound')}</p>;
}

function isCurrent(to: string, path: string) {
  return to === '/' ? path === '/' : path === to || path.startsWith(`${to}/`);
}

function who(): string {
  const c = credential.value;
  if (!c) return '';
  const name = c.kind === 'apiKey' ? t('session.apiKey') : `${c.subject ?? '?'} (${c.roles.join(', ')})`;
  return can.value.admin ? name : `${name}, ${t('session.readOnly')}`;
}

export function App() {
  if (!token.value) return <SignIn />;
  const path = route.value.path;
  return (
    <>
      <header class="top">
        <span class="brand">{t('app.title')}</span>
        <span class="who">{t('session.as', { who: who() })}</span>
        <LanguageSwitch />
        <button type="button" onClick={() => signOut()}>
          {t('signOut')}
        </button>
      </header>
      <nav aria-label={t('nav.label')}>
        <ul>
          {NAV.map(([to, key]) => (
            <li key={to}>
              <Link to={to} aria-current={isCurrent(to, path) ? 'page' : undefined}>
                {t(key)}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <main>{screenFor(path)}</main>
    </>
  );
}
