import { computed, effect, signal } from '@preact/signals';
import { capabilitiesOf, type Capabilities, type Credential, describeCredential } from './lib/credential.ts';
import { type Lang, LANGUAGES, type MessageKey, pickLanguage, translate } from './lib/i18n.ts';

const TOKEN_KEY = 'credits-console.token';
const SCOPES_KEY = 'credits-console.scopes';
const LANG_KEY = 'credits-console.lang';

function stored(key: string): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

const chosen = stored(LANG_KEY);
/** The console's language: the operator's switch for this tab, else the browser's. */
export const lang = signal<Lang>(
  chosen && (LANGUAGES as readonly string[]).includes(chosen)
    ? (chosen as Lang)
    : pickLanguage(navigator.languages),
);
effect(() => {
  document.documentElement.lang = lang.value;
  document.title = translate(lang.value, 'app.title');
});

export function setLang(next: Lang) {
  sessionStorage.setItem(LANG_KEY, next);
  lang.value = next;
}

/** A message in the current language (reading it subscribes the component to language changes). */
export const t = (key: MessageKey, vars?: Record<string, string | number>) =>
  translate(lang.value, key, vars);

/** The credential, kept for this tab only (sessionStorage): never localStorage, a cookie or a URL. */
export const token = signal<string | null>(stored(TOKEN_KEY));
/** An API key's scopes as probed at sign-in (a JWT's roles are read from the token itself). */
export const scopes = signal<string[]>(JSON.parse(stored(SCOPES_KEY) ?? '[]') as string[]);
/** Said on the sign-in page: why the operator is there again. */
export const signInNotice = signal<string | null>(null);

export const credential = computed<Credential | null>(() =>
  token.value ? describeCredential(token.value) : null,
);
export const can = computed<Capabilities>(() =>
  credential.value
    ? capabilitiesOf(credential.value, scopes.value)
    : { admin: false, debit: false, packagesWrite: false },
);

export function signIn(value: string, probedScopes: string[]) {
  sessionStorage.setItem(TOKEN_KEY, value);
  sessionStorage.setItem(SCOPES_KEY, JSON.stringify(probedScopes));
  scopes.value = probedScopes;
  signInNotice.value = null;
  token.value = value;
}

export function signOut(notice: string | null = null) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(SCOPES_KEY);
  scopes.value = [];
  signInNotice.value = notice;
  token.value = null;
}
