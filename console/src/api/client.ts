import createClient from 'openapi-fetch';
import { lang, signOut, t, token } from '../state.ts';
import type { paths } from './openapi.gen.ts';

/** The public API, typed from openapi.yaml; every call carries the credential and the console's language. */
export const api = createClient<paths>({ baseUrl: location.origin });

api.use({
  onRequest({ request }) {
    if (token.value) request.headers.set('authorization', `Bearer ${token.value}`);
    request.headers.set('accept-language', lang.value);
    return request;
  },
});

export interface Problem {
  /** HTTP status; 0 when the service could not be reached. */
  status: number;
  code: string | null;
  /** The envelope's `errors`, in the console's language. */
  messages: string[];
}

export type Result<T> = { ok: true; data: T; status: number } | { ok: false; problem: Problem };

interface Answer {
  data?: unknown;
  error?: unknown;
  response: Response;
}

/**
 * The envelope's `data` of an answer: routes that also answer CSV type their body as `string | envelope`; the
 * console asks for JSON there, so the string side drops out.
 */
type EnvelopeData<T> = T extends { data: infer D } ? D : never;

/**
 * The envelope's `data` on success, or a Problem in words. A 401 after sign-in means the token has expired
 * or was revoked: the operator is sent back to the sign-in page, which says so.
 */
export async function call<A extends Answer>(
  request: Promise<A>,
  { signOutOn401 = true } = {},
): Promise<Result<EnvelopeData<NonNullable<A['data']>>>> {
  let answer: A;
  try {
    answer = await request;
  } catch {
    return { ok: false, problem: { status: 0, code: null, messages: [t('error.unreachable')] } };
  }
  const { response } = answer;
  if (response.ok && answer.data) {
    const envelope = answer.data as { data: EnvelopeData<NonNullable<A['data']>> };
    return { ok: true, data: envelope.data, status: response.status };
  }
  const body = (answer.error ?? {}) as { code?: unknown; errors?: unknown };
  const problem: Problem = {
    status: response.status,
    code: typeof body.code === 'string' ? body.code : null,
    messages: Array.isArray(body.errors) ? body.errors.filter((e): e is string => typeof e === 'string') : [],
  };
  if (response.status === 401 && signOutOn401 && token.value) signOut(t('signIn.expired'));
  return { ok: false, problem };
}

/**
 * Downloads a CSV export (CONTRACT section 15): the API answers text/csv to `Accept: text/csv`. Fetched with
 * the credential (a plain link could not carry it) and saved from a blob, so nothing leaves the service.
 */
export async function downloadCsv(path: string, fallbackName: string): Promise<Problem | null> {
  let response: Response;
  try {
    response = await fetch(path, {
      headers: {
        accept: 'text/csv',
        'accept-language': lang.value,
        ...(token.value ? { authorization: `Bearer ${token.value}` } : {}),
      },
    });
  } catch {
    return { status: 0, code: null, messages: [t('error.unreachable')] };
  }
  if (response.ok && !(response.headers.get('content-type') ?? '').startsWith('text/csv')) {
    return { status: response.status, code: null, messages: [t('error.noCsv')] };
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { code?: string; errors?: string[] };
    return { status: response.status, code: body.code ?? null, messages: body.errors ?? [] };
  }
  const named = /filename="?([^";]+)"?/.exec(response.headers.get('content-disposition') ?? '')?.[1];
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = named ?? fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return null;
}
