import type { Lang } from './i18n.ts';

const LOCALE: Record<Lang, string> = { en: 'en-US', ru: 'ru-RU' };

/** A whole number of credits with the language's digit grouping. */
export function formatCredits(value: number, lang: Lang): string {
  return new Intl.NumberFormat(LOCALE[lang], { maximumFractionDigits: 0 }).format(value);
}

/** A signed amount as a ledger shows it: "+100", "−40" (a real minus sign), "0". */
export function formatSigned(value: number, lang: Lang): string {
  const digits = formatCredits(Math.abs(value), lang);
  return value > 0 ? `+${digits}` : value < 0 ? `\u2212${digits}` : digits;
}

/** An amount in a currency's minor units (499 usd → "$4.99"); the currency's own number of decimals. */
export function formatMoney(minor: number, currency: string | null, lang: Lang): string {
  if (!currency) return formatCredits(minor, lang);
  let format: Intl.NumberFormat;
  try {
    format = new Intl.NumberFormat(LOCALE[lang], { style: 'currency', currency: currency.toUpperCase() });
  } catch {
    return `${formatCredits(minor, lang)} ${currency}`;
  }
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minor / 10 ** digits);
}

/**
 * A moment as "2026-12-01 14:03 UTC": the same for every operator whatever their time zone, so a time read
 * out on a call or pasted into a ticket means one thing. Null says "—".
 */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A day as "2026-12-01" (UTC). */
export function formatDay(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().slice(0, 10);
}

/** Any JSON value as indented text, for payloads and metadata (rendered as text, never as HTML). */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? 'null';
}

/** Shortens an opaque id for a table cell; the full id stays in the title and in links. */
export function shortId(id: string | null | undefined, keep = 12): string {
  if (!id) return '—';
  return id.length > keep ? `${id.slice(0, keep)}…` : id;
}
