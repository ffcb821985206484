import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { toAppError } from '../../src/http/envelope.ts';
import { isMessageKey, LANGUAGES, languageOf, MESSAGES, msg, render } from '../../src/messages.ts';
import { asAdmin, asUser, buildTestApp, createApiKey, grant, type TestApp } from '../helpers/app.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = await Promise.all(
    entries.map((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : [join(dir, e.name)])),
  );
  return files.flat().filter((f) => f.endsWith('.ts'));
}

describe('the message catalogue', () => {
  it('has every message in English and Russian, with the same placeholders', () => {
    for (const [key, texts] of Object.entries(MESSAGES)) {
      for (const language of LANGUAGES) expect(texts[language].trim(), `${key} ${language}`).not.toBe('');
      expect(placeholders(texts.ru), key).toEqual(placeholders(texts.en));
      // A real translation: Russian words, unless the text is nothing but its placeholders.
      if (texts.en.replace(/\{\w+\}/g, '').trim() !== '') expect(texts.ru, key).toMatch(/[а-яё]/i);
    }
  });

  it('renders params, nested messages and per-language values in the one language', () => {
    const m = msg('ledger.idempotency_key_reused', { operation: msg('ledger.operation.debit') });
    expect(render(m, 'en')).toBe('Debit: the idempotency key was already used for another request');
    expect(render(m, 'ru')).toBe('Списание: этот ключ идемпотентности уже использован для другого запроса');
    const v = msg('validation.invalid', {
      field: 'body.amount',
      reason: { en: 'must be integer', ru: 'должно быть integer' },
    });
    expect(render(v, 'ru')).toBe('body.amount должно быть integer');
  });

  it("has messages for the HTTP layer's own errors, and wraps any other in a translated frame", () => {
    const bad = toAppError(
      Object.assign(new URIError("'%E0%A4%A' is not a valid url component"), {
        code: 'FST_ERR_BAD_URL',
        statusCode: 400,
      }),
    );
    expect(bad.code).toBe('validation_failed');
    expect(bad.render('ru')).toEqual(['Некорректный URL: неверное %-кодирование']);
    const other = toAppError(
      Object.assign(new Error('Something Fastify says'), { code: 'FST_ERR_NEW', statusCode: 400 }),
    );
    expect(other.render('en')).toEqual(['Something Fastify says']);
    expect(other.render('ru')).toEqual(['Запрос отклонён: Something Fastify says']);
    expect(toAppError(new Error('select secret from t')).render('ru')).toEqual(['Внутренняя ошибка сервера']);
  });

  it('reads Accept-Language: en or ru by preference, English otherwise', () => {
    expect(languageOf(undefined)).toBe('en');
    expect(languageOf('ru')).toBe('ru');
    expect(languageOf('ru-RU,ru;q=0.9,en-US;q=0.8')).toBe('ru');
    expect(languageOf('en;q=0.5, ru;q=0.7')).toBe('ru');
    expect(languageOf('de-DE, fr;q=0.9')).toBe('en');
    expect(languageOf('de, ru;q=0.3')).toBe('ru');
    expect(languageOf('*')).toBe('en');
  });

  /**
   * Errors thrown with a plain English string (`new AppError(code, 'text')`, `conflict('text')`) compile, so
   * routes written before the catalogue keep working, but they are never translated. This lists them: move
   * each text into src/messages.ts and throw it by key.
   */
  it('has no error thrown with a plain English string left in src/', async () => {
    const raw: string[] = [];
    const call =
      /\b(new AppError\(\s*'[a-z_]+',\s*|(?:notFound|conflict|badRequest|unavailable|unauthorized|forbidden)\(\s*)(['"`])((?:\\.|(?!\2).)*)\2/g;
    for (const file of await sourceFiles(join(ROOT, 'src'))) {
      const text = await readFile(file, 'utf8');
      for (const m of text.matchAll(call)) {
        const literal = m[3] ?? '';
        if (m[2] !== '`' && isMessageKey(literal)) continue;
        const line = text.slice(0, m.index).split('\n').length;
        raw.push(`${relative(ROOT, file)}:${line}: ${m[0]}`);
      }
    }
    expect(raw, `errors still thrown with plain English:\n${raw.join('\n')}`).toEqual([]);
  });
});

describe('Accept-Language on real answers', () => {
  let t: TestApp;
  let debitKey: string;
  beforeAll(async () => {
    t = await buildTestApp();
    debitKey = await createApiKey(t.app, ['credits:debit']);
    await grant(t.app, 'lang_user', 3);
  });

  const ru = { 'accept-language': 'ru-RU,ru;q=0.9,en;q=0.8' };

  it('answers errors in Russian with Content-Language: ru, and in English by default', async () => {
    const cases = [
      {
        method: 'GET',
        url: '/api/v1/nope',
        headers: {},
        status: 404,
        ru: 'Маршрут GET /api/v1/nope не найден',
      },
      {
        method: 'GET',
        url: '/api/v1/credits/balance',
        headers: {},
        status: 401,
        ru: 'Учётные данные отсутствуют или недействительны',
      },
      {
        method: 'GET',
        url: '/api/v1/credit-packages/pkg_missing',
        headers: {},
        status: 404,
        ru: 'Пакет кредитов не найден',
      },
      {
        method: 'GET',
        url: '/api/v1/accounts',
        headers: asUser('lang_user'),
        status: 403,
        ru: 'Нет доступа: для этого маршрута нужен JWT с ролью admin или ops или API-ключ с правом balances:read',
      },
      {
        method: 'GET',
        url: '/api/v1/accounts/lang_user/holds/hold_missing',
        headers: asUser('lang_user'),
        status: 404,
        ru: 'Резерв не найден',
      },
      {
        method: 'POST',
        url: '/api/v1/accounts/lang_user/holds/hold_missing/release',
        headers: asAdmin(),
        status: 404,
        ru: 'Резерв не найден',
      },
    ] as const;
    for (const c of cases) {
      const inRussian = await t.app.inject({
        method: c.method,
        url: c.url,
        headers: { ...c.headers, ...ru },
      });
      expect(inRussian.statusCode).toBe(c.status);
      expect(inRussian.headers['content-language']).toBe('ru');
      expect(inRussian.json().errors).toEqual([c.ru]);
      const inEnglish = await t.app.inject({ method: c.method, url: c.url, headers: c.headers });
      expect(inEnglish.headers['content-language']).toBe('en');
      expect(inEnglish.json().errors[0]).not.toMatch(/[а-яё]/i);
      // The code never changes with the language.
      expect(inRussian.json().code).toBe(inEnglish.json().code);
    }
  });

  it('translates debit errors: 402 with its figures, 409 on a reused key, and Ajv validation messages', async () => {
    const debit = (payload: unknown, key: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/accounts/lang_user/debits',
        headers: { 'x-api-key': debitKey, 'idempotency-key': key, ...ru },
        payload: payload as object,
      });
    const short = await debit({ amount: 5 }, 'lang-1');
    expect(short.statusCode).toBe(402);
    expect(short.json().errors).toEqual([
      'Недостаточно кредитов: доступно 3 (баланс 3, из них 0 в резерве), запрошено 5',
    ]);

    expect((await debit({ amount: 1 }, 'lang-2')).statusCode).toBe(201);
    const reused = await debit({ amount: 2 }, 'lang-2');
    expect(reused.statusCode).toBe(409);
    expect(reused.json()).toMatchObject({ code: 'idempotency_key_reused' });
    expect(reused.json().errors[0]).toMatch(/^Списание: /);

    const notInteger = await debit({ amount: 1.5 }, 'lang-3');
    expect(notInteger.statusCode).toBe(400);
    expect(notInteger.json().errors).toEqual(['body.amount должно быть integer']);
    const unknownField = await debit({ amount: 1, colour: 'red' }, 'lang-4');
    expect(unknownField.json().errors).toEqual([
      "body содержит неизвестное поле 'colour'; известные поля: amount, reason, metadata",
    ]);
    const tooSmall = await debit({ amount: 0 }, 'lang-5');
    expect(tooSmall.json().errors).toEqual(['body.amount должно быть >= 1']);
  });

  it('says Content-Language on successes too, and falls back to English for other languages', async () => {
    const ok = await t.app.inject({
      method: 'GET',
      url: '/api/v1/credits/balance',
      headers: { ...asUser('x'), ...ru },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['content-language']).toBe('ru');
    const german = await t.app.inject({
      method: 'GET',
      url: '/api/v1/credits/balance',
      headers: { 'accept-language': 'de-DE' },
    });
    expect(german.headers['content-language']).toBe('en');
    expect(german.json().errors).toEqual(['Missing or invalid credentials']);
    const admin = await t.app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages',
      headers: { ...asAdmin(), ...ru, 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(admin.statusCode).toBe(415);
    expect(admin.json().errors).toEqual(['Неподдерживаемый Content-Type; отправьте application/json']);
  });
});
