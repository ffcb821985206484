/** The console's view logic, without a browser: formatting, languages, keys, queries, chart data. */
import { describe, expect, it } from 'vitest';
import { capabilitiesOf, describeCredential } from '../../console/src/lib/credential.ts';
import {
  formatCredits,
  formatMoney,
  formatSigned,
  formatTime,
  shortId,
} from '../../console/src/lib/format.ts';
import { catalogues, pickLanguage, translate } from '../../console/src/lib/i18n.ts';
import { newIdempotencyKey } from '../../console/src/lib/idempotency.ts';
import {
  balanceColumns,
  csvFileName,
  intervalStart,
  lastDaysQuery,
  ledgerQuery,
  rangeQuery,
  reportColumns,
  withQuery,
} from '../../console/src/lib/query.ts';
import { tokenFor } from '../helpers/app.ts';

describe('languages', () => {
  it('follows the browser: the first language it speaks, English otherwise', () => {
    expect(pickLanguage(['ru-RU', 'en-US'])).toBe('ru');
    expect(pickLanguage(['de-DE', 'ru'])).toBe('ru');
    expect(pickLanguage(['en-GB', 'ru'])).toBe('en');
    expect(pickLanguage(['de', 'fr'])).toBe('en');
    expect(pickLanguage([])).toBe('en');
    expect(pickLanguage(['RU_ru'])).toBe('ru');
  });

  it('has every message in Russian with the same placeholders', () => {
    const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const [key, english] of Object.entries(catalogues.en)) {
      const russian = catalogues.ru[key as keyof typeof catalogues.ru];
      expect(russian, key).toBeTruthy();
      expect(placeholders(russian), key).toEqual(placeholders(english));
    }
  });

  it('fills placeholders and leaves unknown ones as written', () => {
    expect(translate('en', 'account.expiringItem', { credits: 10, date: '2026-12-17' })).toBe(
      '10 credits expire on 2026-12-17',
    );
    expect(translate('ru', 'nav.overview')).toBe('Обзор');
    expect(translate('en', 'account.title')).toBe('Account {userId}');
  });
});

describe('formatting', () => {
  it('credits with grouping, signed amounts with a real minus sign', () => {
    expect(formatCredits(5000, 'en')).toBe('5,000');
    expect(formatCredits(5000, 'ru')).toMatch(/^5\s000$/);
    expect(formatSigned(40, 'en')).toBe('+40');
    expect(formatSigned(-40, 'en')).toBe('\u221240');
    expect(formatSigned(0, 'en')).toBe('0');
  });

  it('money from minor units in the currency’s own decimals', () => {
    expect(formatMoney(499, 'usd', 'en')).toBe('$4.99');
    expect(formatMoney(500, 'jpy', 'en')).toBe('¥500');
    expect(formatMoney(499, null, 'en')).toBe('499');
    expect(formatMoney(499, 'zzzz', 'en')).toBe('499 zzzz');
  });

  it('times in UTC whatever the operator’s zone, ids shortened', () => {
    expect(formatTime('2026-12-01T14:03:59.123Z')).toBe('2026-12-01 14:03 UTC');
    expect(formatTime(null)).toBe('—');
    expect(shortId('ent_0123456789abcdef')).toBe('ent_01234567…');
    expect(shortId('short')).toBe('short');
  });
});

describe('idempotency keys', () => {
  it('name the action and its target, and differ per confirmation', () => {
    expect(newIdempotencyKey('reverse', 'ent_1', 'r1')).toBe('console:reverse:ent_1:r1');
    expect(newIdempotencyKey('reverse', 'ent_1')).not.toBe(newIdempotencyKey('reverse', 'ent_1'));
    expect(newIdempotencyKey('reverse', 'x'.repeat(300)).length).toBe(255);
  });
});

describe('queries and the CSV address', () => {
  it('ledger filters: types in a fixed order, days as [from, to) in UTC, nothing when all types are picked', () => {
    expect(ledgerQuery({ types: ['debit', 'grant'], fromDay: '2026-12-01', toDay: '2026-12-03' })).toEqual({
      type: 'grant,debit',
      from: '2026-12-01T00:00:00.000Z',
      to: '2026-12-04T00:00:00.000Z',
    });
    expect(
      ledgerQuery({
        types: ['grant', 'debit', 'reversal', 'expiry', 'debit_reversal'],
        fromDay: '',
        toDay: 'nonsense',
      }),
    ).toEqual({});
  });

  it('the CSV address keeps only the filters given; the file is named for what and when', () => {
    expect(withQuery('/api/v1/accounts/u%201/ledger', { type: 'debit', from: undefined, to: '' })).toBe(
      '/api/v1/accounts/u%201/ledger?type=debit',
    );
    expect(withQuery('/api/v1/reports/credits', {})).toBe('/api/v1/reports/credits');
    expect(csvFileName('ledger-user/1', new Date('2026-12-07T10:00:00Z'))).toBe(
      'ledger-user_1-2026-12-07.csv',
    );
  });
});

describe('chart ranges and data', () => {
  const now = new Date('2026-12-09T15:45:00Z'); // a Wednesday

  it('intervals start on the hour, the day, Monday, the first of the month (UTC)', () => {
    expect(intervalStart(now, 'hour').toISOString()).toBe('2026-12-09T15:00:00.000Z');
    expect(intervalStart(now, 'day').toISOString()).toBe('2026-12-09T00:00:00.000Z');
    expect(intervalStart(now, 'week').toISOString()).toBe('2026-12-07T00:00:00.000Z');
    expect(intervalStart(now, 'month').toISOString()).toBe('2026-12-01T00:00:00.000Z');
  });

  it('each range is whole intervals ending with the current one', () => {
    expect(rangeQuery('day', now)).toEqual({
      from: '2026-11-10T00:00:00.000Z',
      to: '2026-12-10T00:00:00.000Z',
      interval: 'day',
    });
    expect(rangeQuery('hour', now)).toEqual({
      from: '2026-12-07T16:00:00.000Z',
      to: '2026-12-09T16:00:00.000Z',
      interval: 'hour',
    });
    expect(rangeQuery('week', now).to).toBe('2026-12-14T00:00:00.000Z');
    expect(lastDaysQuery(30, now)).toEqual(rangeQuery('day', now));
  });

  it('balance history becomes columns, empty intervals kept', () => {
    expect(
      balanceColumns([
        { at: '2026-12-01T00:00:00.000Z', balance: 100 },
        { at: '2026-12-02T00:00:00.000Z', balance: 100 },
        { at: '2026-12-03T00:00:00.000Z', balance: 60 },
      ]),
    ).toEqual([
      [1796083200, 1796169600, 1796256000],
      [100, 100, 60],
    ]);
  });

  it('the credits report is summed over currencies per interval, with the last outstanding', () => {
    const item = (
      at: string,
      currency: string | null,
      granted: number,
      debited: number,
      outstanding: number,
    ) => ({
      at,
      currency,
      credits: { granted, debited, outstanding },
    });
    const { columns, outstanding } = reportColumns([
      item('2026-12-02T00:00:00.000Z', 'usd', 10, 1, 9),
      item('2026-12-01T00:00:00.000Z', 'usd', 100, 30, 70),
      item('2026-12-02T00:00:00.000Z', null, 5, 0, 5),
      item('2026-12-01T00:00:00.000Z', 'eur', 50, 0, 50),
    ]);
    expect(columns).toEqual([
      [1796083200, 1796169600],
      [150, 15],
      [30, 1],
    ]);
    expect(outstanding).toBe(14);
    expect(reportColumns([]).outstanding).toBeNull();
  });
});

describe('credentials', () => {
  it('reads a JWT’s subject and roles; anything else is an API key', () => {
    expect(describeCredential(tokenFor('ops_1', ['ops']))).toEqual({
      kind: 'jwt',
      subject: 'ops_1',
      roles: ['ops'],
    });
    expect(describeCredential('ck_live_abcdef')).toEqual({ kind: 'apiKey' });
    expect(describeCredential('a.%%%.c')).toEqual({ kind: 'apiKey' });
  });

  it('admins act, ops read, API keys act as far as their probed scopes go', () => {
    expect(capabilitiesOf(describeCredential(tokenFor('a', ['admin'])))).toEqual({
      admin: true,
      debit: true,
      packagesWrite: true,
    });
    expect(capabilitiesOf(describeCredential(tokenFor('o', ['ops'])))).toEqual({
      admin: false,
      debit: false,
      packagesWrite: false,
    });
    expect(capabilitiesOf({ kind: 'apiKey' }, ['credits:debit'])).toEqual({
      admin: false,
      debit: true,
      packagesWrite: false,
    });
  });
});
