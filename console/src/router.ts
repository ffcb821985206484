import { signal } from '@preact/signals';

export const BASE = '/console';

/** The path under /console/ ("/accounts/u_1"), kept in step with the address bar. */
export const route = signal(currentRoute());

function currentRoute(): { path: string; query: URLSearchParams } {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '/';
  return { path: path === '' ? '/' : path, query: new URLSearchParams(location.search) };
}

addEventListener('popstate', () => {
  route.value = currentRoute();
});

/** The address of a console page: href('/accounts/' + id). */
export const href = (path: string) => `${BASE}${path}`;

export function navigate(path: string, { replace = false } = {}) {
  const url = href(path);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route.value = currentRoute();
  scrollTo(0, 0);
}

/** Matches `/accounts/:userId` style patterns; parameters come back decoded. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const names: string[] = [];
  const source = pattern.replace(/:(\w+)/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  const found = new RegExp(`^${source}/?$`).exec(path);
  if (!found) return null;
  const params: Record<string, string> = {};
  names.forEach((name, i) => {
    params[name] = decodeURIComponent(found[i + 1] ?? '');
  });
  return params;
}
