/**
 * Every message the API answers, in English and Russian: the one place an error text is written.
 * `{name}` placeholders are filled from the message's params (a param may itself be a message, rendered in
 * the same language). Error codes, field names and enum values are never translated.
 * Adding an error: add a key here with both languages, then throw it by key, as `throw notFound('package.not_found')` (see
 * docs/api-conventions.md).
 */
export const MESSAGES = {
  // authentication and access
  'auth.missing': {
    en: 'Missing or invalid credentials',
    ru: 'Учётные данные отсутствуют или недействительны',
  },
  'auth.bad_header': {
    en: 'Authorization header must be "Bearer <token>"',
    ru: 'Заголовок Authorization должен иметь вид "Bearer <token>"',
  },
  'auth.api_key_invalid': { en: 'API key is invalid or revoked', ru: 'API-ключ недействителен или отозван' },
  'auth.token_expired': { en: 'Token has expired', ru: 'Срок действия токена истёк' },
  'auth.token_invalid': { en: 'Token is invalid', ru: 'Токен недействителен' },
  'auth.token_no_sub': { en: 'Token has no valid sub claim', ru: 'В токене нет корректного поля sub' },
  'auth.scope_missing': {
    en: 'API key lacks the scope for this route (one of: {scopes})',
    ru: 'У API-ключа нет нужного права для этого маршрута (нужно одно из: {scopes})',
  },
  'auth.not_allowed': { en: 'Not allowed to access this resource', ru: 'Нет доступа к этому ресурсу' },
  'auth.needs': {
    en: 'Not allowed: this route needs {needs}',
    ru: 'Нет доступа: для этого маршрута нужен {needs}',
  },
  'auth.user_token_only': {
    en: 'This route is for user tokens',
    ru: 'Этот маршрут доступен только с токеном пользователя',
  },
  'auth.too_many_failures': {
    en: 'Too many failed authentications from this address; retry in {seconds} s',
    ru: 'Слишком много неудачных попыток входа с этого адреса; повторите через {seconds} с',
  },
  'auth.metrics_token': { en: 'Metrics token required', ru: 'Нужен токен для метрик' },
  'auth.include_inactive': {
    en: 'includeInactive=true needs an admin token or a packages:write key',
    ru: 'Для includeInactive=true нужен токен администратора или ключ с правом packages:write',
  },

  // resources
  'route.not_found': { en: 'Route {method} {path} not found', ru: 'Маршрут {method} {path} не найден' },
  'package.not_found': { en: 'Credit package not found', ru: 'Пакет кредитов не найден' },
  'package.inactive': { en: 'Credit package is not active', ru: 'Пакет кредитов неактивен' },
  'package.currency_invalid': {
    en: "body.currency must be a lower-case ISO 4217 code, got '{currency}'",
    ru: "body.currency должно быть кодом ISO 4217 в нижнем регистре, получено '{currency}'",
  },
  'package.product_ids_repeat': {
    en: 'body.revenuecatProductIds must not repeat an id',
    ru: 'body.revenuecatProductIds не должно содержать повторяющихся идентификаторов',
  },
  'package.product_id_taken': {
    en: "RevenueCat product id '{productId}' already belongs to package {packageId}",
    ru: "Идентификатор продукта RevenueCat '{productId}' уже принадлежит пакету {packageId}",
  },
  'package.product_id_clash': {
    en: 'A RevenueCat product id already belongs to another package',
    ru: 'Идентификатор продукта RevenueCat уже принадлежит другому пакету',
  },
  'purchase.not_found': { en: 'Purchase not found', ru: 'Покупка не найдена' },
  'api_key.not_found': { en: 'API key not found', ru: 'API-ключ не найден' },
  'api_key.already_revoked': { en: 'API key is already revoked', ru: 'API-ключ уже отозван' },

  // ledger
  'ledger.insufficient_credits': {
    en: 'Insufficient credits: available {available} (balance {balance}, {held} of it held), requested {requested}',
    ru: 'Недостаточно кредитов: доступно {available} (баланс {balance}, из них {held} в резерве), запрошено {requested}',
  },
  'ledger.idempotency_key_reused': {
    en: '{operation}: the idempotency key was already used for another request',
    ru: '{operation}: этот ключ идемпотентности уже использован для другого запроса',
  },
  'ledger.operation.debit': { en: 'Debit', ru: 'Списание' },
  'ledger.operation.grant': { en: 'Grant', ru: 'Начисление' },
  'ledger.operation.clawback': { en: 'Clawback', ru: 'Возврат' },
  'ledger.operation.hold': { en: 'Hold', ru: 'Резерв' },
  'ledger.operation.debit_reversal': { en: 'Debit reversal', ru: 'Отмена списания' },
  'hold.not_found': { en: 'Hold not found', ru: 'Резерв не найден' },
  'hold.expired': {
    en: 'Hold {holdId} expired at {expiresAt}; its credits are available again',
    ru: 'Срок резерва {holdId} истёк {expiresAt}; его кредиты снова доступны',
  },
  'hold.already_captured': {
    en: 'Hold {holdId} was already captured for {amount}',
    ru: 'Резерв {holdId} уже списан на сумму {amount}',
  },
  'hold.not_active': {
    en: 'Hold {holdId} is {status}, not active',
    ru: 'Резерв {holdId} в состоянии {status}, а не active',
  },
  'hold.capture_too_much': {
    en: "body.amount must be at most the hold's amount ({amount})",
    ru: 'body.amount должно быть не больше суммы резерва ({amount})',
  },
  'debit.not_found': { en: 'Debit entry not found', ru: 'Запись о списании не найдена' },
  'reversal.nothing_left': {
    en: 'Debit {entryId} has nothing left to reverse',
    ru: 'По списанию {entryId} больше нечего возвращать',
  },
  'reversal.too_much': {
    en: 'Debit {entryId} has less than {amount} left to reverse',
    ru: 'По списанию {entryId} осталось вернуть меньше {amount}',
  },
  'batch.key_repeated': {
    en: 'body.items.{index}.idempotencyKey repeats body.items.{first}.idempotencyKey for user {userId}',
    ru: 'body.items.{index}.idempotencyKey повторяет body.items.{first}.idempotencyKey для пользователя {userId}',
  },
  'query.time_invalid': {
    en: 'querystring.{field} is not a time Postgres can store (years 0001 to 9999)',
    ru: 'querystring.{field} — время, которое нельзя сохранить (годы с 0001 по 9999)',
  },
  'query.time_range': {
    en: 'querystring.from must be earlier than querystring.to',
    ru: 'querystring.from должно быть раньше querystring.to',
  },
  'query.too_many_intervals': {
    en: 'querystring.interval: from {from} to {to} by {interval} is {count} intervals, more than {max}',
    ru: 'querystring.interval: с {from} по {to} по {interval} — это {count} интервалов, больше {max}',
  },
  'cursor.invalid': {
    en: 'querystring.cursor is not a valid cursor',
    ru: 'querystring.cursor не является корректным курсором',
  },

  // checkout and providers
  'checkout.not_configured': {
    en: 'Stripe is not configured: checkout is unavailable',
    ru: 'Stripe не настроен: оплата недоступна',
  },
  'checkout.stripe_unavailable': {
    en: 'Stripe is unavailable: the Checkout Session could not be created; retry later',
    ru: 'Stripe недоступен: не удалось создать Checkout Session; повторите позже',
  },
  'checkout.url_invalid': {
    en: 'body.{field} is not a valid URL',
    ru: 'body.{field} не является корректным URL',
  },
  'checkout.url_origin': {
    en: 'body.{field} must be on an allowed origin (CHECKOUT_ALLOWED_ORIGINS); {origin} is not one',
    ru: 'body.{field} должен вести на разрешённый источник (CHECKOUT_ALLOWED_ORIGINS); {origin} к ним не относится',
  },
  'checkout.url_required': {
    en: 'body.{field} is required: {variable} is not configured',
    ru: 'body.{field} обязателен: {variable} не задан',
  },
  'checkout.session_not_found': {
    en: 'Checkout Session not found',
    ru: 'Checkout Session не найдена',
  },
  'stripe.not_configured': {
    en: 'Stripe is not configured (STRIPE_SECRET_KEY is unset)',
    ru: 'Stripe не настроен (STRIPE_SECRET_KEY не задан)',
  },
  'stripe.webhook_not_configured': {
    en: 'Stripe webhooks are not configured',
    ru: 'Вебхуки Stripe не настроены',
  },
  'stripe.signature_missing': {
    en: 'Missing Stripe-Signature header',
    ru: 'Отсутствует заголовок Stripe-Signature',
  },
  'stripe.signature_invalid': {
    en: 'Stripe-Signature does not match the body, or its timestamp is more than {seconds} s away',
    ru: 'Stripe-Signature не соответствует телу запроса, или его время отличается больше чем на {seconds} с',
  },
  'stripe.event_invalid': {
    en: 'body must be a Stripe event with id, type and data.object',
    ru: 'body должно быть событием Stripe с полями id, type и data.object',
  },
  'revenuecat.not_configured': {
    en: 'The RevenueCat webhook is not configured (REVENUECAT_WEBHOOK_AUTH is unset)',
    ru: 'Вебхук RevenueCat не настроен (REVENUECAT_WEBHOOK_AUTH не задан)',
  },
  'revenuecat.unauthorized': {
    en: 'Missing or wrong Authorization for the RevenueCat webhook',
    ru: 'Заголовок Authorization для вебхука RevenueCat отсутствует или неверен',
  },

  'revenuecat.event_invalid': {
    en: 'body must be a RevenueCat event with event.id and event.type',
    ru: 'body должно быть событием RevenueCat с полями event.id и event.type',
  },
  'revenuecat.sync_not_configured': {
    en: 'RevenueCat sync is not configured (REVENUECAT_API_KEY is unset)',
    ru: 'Синхронизация с RevenueCat не настроена (REVENUECAT_API_KEY не задан)',
  },
  'revenuecat.unreachable': {
    en: 'RevenueCat is unreachable: the purchases could not be read; retry later',
    ru: 'RevenueCat недоступен: не удалось прочитать покупки; повторите позже',
  },
  'revenuecat.http_error': {
    en: 'RevenueCat answered HTTP {status}: the purchases could not be read; retry later',
    ru: 'RevenueCat ответил HTTP {status}: не удалось прочитать покупки; повторите позже',
  },
  'revenuecat.no_subscriber': {
    en: 'RevenueCat answered without a subscriber: the purchases could not be read',
    ru: 'RevenueCat ответил без данных подписчика: не удалось прочитать покупки',
  },
  'provider_event.not_found': { en: 'Provider event not found', ru: 'Событие провайдера не найдено' },
  'provider_event.already_processed': {
    en: 'This provider event was processed: nothing to replay',
    ru: 'Это событие провайдера уже обработано: повторять нечего',
  },

  // events and webhook endpoints
  'event.not_found': { en: 'Event not found', ru: 'Событие не найдено' },
  'webhook_endpoint.not_found': { en: 'Webhook endpoint not found', ru: 'Эндпоинт вебхуков не найден' },
  'webhook_endpoint.thresholds_repeat': {
    en: 'body.lowBalanceThresholds must not repeat a threshold',
    ru: 'body.lowBalanceThresholds не должно содержать повторяющихся порогов',
  },
  'webhook_endpoint.events_wildcard': {
    en: 'body.events must be ["*"] alone or a list of event types',
    ru: 'body.events должно быть либо ["*"] без других значений, либо списком типов событий',
  },
  'webhook_delivery.not_found': { en: 'Delivery not found', ru: 'Доставка не найдена' },
  'webhook_delivery.attempt_running': {
    en: 'An attempt of this delivery is running; retry when it has ended',
    ru: 'Попытка этой доставки ещё выполняется; повторите, когда она завершится',
  },
  /** Why a webhook URL is refused: the `reason` of `validation.invalid` for body.url (src/modules/events-out/url-guard.ts). */
  'webhook_url.invalid': { en: 'is not a valid URL', ru: 'не является корректным URL' },
  'webhook_url.scheme': { en: 'must be an http(s) URL', ru: 'должен быть URL со схемой http или https' },
  'webhook_url.https_only': {
    en: 'must be an https URL in production',
    ru: 'должен быть https-URL в production',
  },
  'webhook_url.private_address': {
    en: 'points at a private or loopback address ({host})',
    ru: 'указывает на частный или loopback-адрес ({host})',
  },
  'webhook_url.unresolvable': {
    en: 'has a host name that does not resolve ({host})',
    ru: 'содержит имя хоста, которое не разрешается в адрес ({host})',
  },
  'webhook_url.resolves_private': {
    en: 'resolves to a private or loopback address ({host} → {address})',
    ru: 'разрешается в частный или loopback-адрес ({host} → {address})',
  },

  // the HTTP layer
  'request.invalid_json': { en: 'Body is not valid JSON', ru: 'Тело запроса не является корректным JSON' },
  'request.too_large': {
    en: 'Request body is larger than the limit',
    ru: 'Тело запроса больше допустимого размера',
  },
  'request.unsupported_media_type': {
    en: 'Unsupported Content-Type; send application/json',
    ru: 'Неподдерживаемый Content-Type; отправьте application/json',
  },
  'request.invalid': { en: 'Invalid request', ru: 'Некорректный запрос' },
  'request.bad_url': {
    en: 'The URL is not valid: a bad %-encoding',
    ru: 'Некорректный URL: неверное %-кодирование',
  },
  'request.param_too_long': {
    en: 'A path parameter is longer than {max} characters',
    ru: 'Параметр пути длиннее {max} символов',
  },
  'request.timeout': {
    en: 'The request did not arrive within {ms} ms (REQUEST_TIMEOUT_MS)',
    ru: 'Запрос не поступил полностью за {ms} мс (REQUEST_TIMEOUT_MS)',
  },
  'request.headers_too_large': {
    en: 'The request headers are larger than the limit',
    ru: 'Заголовки запроса больше допустимого размера',
  },
  'request.malformed': {
    en: 'Malformed HTTP request (request line or a header)',
    ru: 'Некорректный HTTP-запрос (строка запроса или заголовок)',
  },
  'request.too_deep': {
    en: '{field} is nested more than {depth} levels deep',
    ru: '{field}: вложенность больше {depth} уровней',
  },
  'request.bad_content_length': {
    en: 'Request body size did not match Content-Length',
    ru: 'Размер тела запроса не совпадает с Content-Length',
  },
  /** A 4xx the HTTP layer raised with a message of its own (in English): the Russian text says what it is. */
  'request.rejected': { en: '{detail}', ru: 'Запрос отклонён: {detail}' },
  'request.rate_limited': {
    en: 'Too many requests; retry in {seconds} s',
    ru: 'Слишком много запросов; повторите через {seconds} с',
  },
  'validation.unknown_field': {
    en: "{field} has an unknown field '{property}'{suggestion}; known fields: {known}",
    ru: "{field} содержит неизвестное поле '{property}'{suggestion}; известные поля: {known}",
  },
  'validation.unknown_field_none': {
    en: "{field} has an unknown field '{property}'; it takes no fields",
    ru: "{field} содержит неизвестное поле '{property}'; полей у него нет",
  },
  'validation.one_of': {
    en: '{field} must be one of: {values}',
    ru: '{field} должно быть одним из: {values}',
  },
  'validation.one_of_got': {
    en: '{field} must be one of: {values} (got {got})',
    ru: '{field} должно быть одним из: {values} (получено {got})',
  },
  'validation.required': { en: '{field}.{property} is required', ru: '{field}.{property} обязательно' },
  /** `reason` is Ajv's message, translated by ajv-i18n. */
  'validation.invalid_key': { en: "{field} key '{key}' {reason}", ru: "{field}: ключ '{key}' {reason}" },
  'validation.invalid': { en: '{field} {reason}', ru: '{field} {reason}' },

  // the service
  'service.database_unavailable': { en: 'The database is unavailable', ru: 'База данных недоступна' },
  'ledger.balance_too_large': {
    en: 'The change would take the balance past 9007199254740991, the most an account can hold',
    ru: 'Изменение превысило бы баланс 9007199254740991 — максимум, который может хранить счёт',
  },
  'service.shutting_down': {
    en: 'The service is shutting down; retry the request',
    ru: 'Сервис останавливается; повторите запрос',
  },
  'db.unique_violation': { en: 'The resource already exists', ru: 'Такой ресурс уже существует' },
  'db.foreign_key_violation': {
    en: 'The resource refers to, or is referred to by, another resource',
    ru: 'Ресурс ссылается на другой ресурс или другой ресурс ссылается на него',
  },
  'db.check_violation': {
    en: 'The change would break a rule of the stored data',
    ru: 'Изменение нарушило бы правило хранимых данных',
  },
  'db.append_only': {
    en: 'Ledger entries cannot be changed or removed',
    ru: 'Записи журнала нельзя изменять или удалять',
  },
  'db.unstorable_value': {
    en: 'The request contains a value the database cannot store',
    ru: 'Запрос содержит значение, которое база данных не может сохранить',
  },
  'service.deadline': {
    en: 'The request did not complete within {ms} ms; retry it (with the same Idempotency-Key, a debit that went through is replayed, never applied twice)',
    ru: 'Запрос не выполнен за {ms} мс; повторите его (с тем же Idempotency-Key прошедшее списание будет возвращено повторно, а не применено дважды)',
  },
  'service.busy': { en: 'The service is busy; retry the request', ru: 'Сервис занят; повторите запрос' },
  'service.migrations_pending': {
    en: '{count} migration(s) not applied yet',
    ru: 'Не применено миграций: {count}',
  },
  'service.internal_error': { en: 'Internal server error', ru: 'Внутренняя ошибка сервера' },
} as const satisfies Record<string, Record<Language, string>>;

export const LANGUAGES = ['en', 'ru'] as const;
export type Language = (typeof LANGUAGES)[number];
export type MessageKey = keyof typeof MESSAGES;

/** The names between braces in a message text. */
type Placeholders<S extends string> = S extends `${string}{${infer P}}${infer Rest}`
  ? P | Placeholders<Rest>
  : never;

/** A param: a value shown as is, another message (rendered in the same language), or a text per language. */
export type ParamValue = string | number | Message | Readonly<Record<Language, string>>;
export type ParamsOf<K extends MessageKey> = { [P in Placeholders<(typeof MESSAGES)[K]['en']>]: ParamValue };
/** The params argument of a key: none when its text has no placeholder. */
export type ParamsArg<K extends MessageKey> = [Placeholders<(typeof MESSAGES)[K]['en']>] extends [never]
  ? []
  : [params: ParamsOf<K>];

export interface Message {
  readonly key: MessageKey;
  readonly params: Readonly<Record<string, ParamValue>>;
}

/** A message to render later, in the language the request asks for. */
export function msg<K extends MessageKey>(key: K, ...params: ParamsArg<K>): Message {
  return { key, params: (params[0] ?? {}) as Record<string, ParamValue> };
}

export function isMessageKey(value: string): value is MessageKey {
  return Object.hasOwn(MESSAGES, value);
}

function isMessage(value: ParamValue): value is Message {
  return typeof value === 'object' && 'key' in value && 'params' in value;
}

/** A message in `language`; a plain string (a message not yet in the catalogue) is shown as it is. */
export function render(message: Message | string, language: Language): string {
  if (typeof message === 'string') return message;
  const text: string = MESSAGES[message.key][language];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = message.params[name];
    if (value === undefined) return whole;
    if (typeof value === 'string' || typeof value === 'number') return String(value);
    if (isMessage(value)) return render(value, language);
    return value[language];
  });
}

/**
 * The language of an `Accept-Language` header: the first of en and ru by preference (q-values honoured),
 * English when it names neither.
 */
export function languageOf(header: string | string[] | undefined): Language {
  if (header === undefined) return 'en';
  const value = Array.isArray(header) ? header.join(',') : header;
  let best: Language = 'en';
  let bestQ = 0;
  for (const part of value.split(',')) {
    const [tag = '', ...attributes] = part.trim().toLowerCase().split(';');
    const primary = tag.trim().split('-')[0];
    if (primary !== 'en' && primary !== 'ru') continue;
    const q = attributes.map((a) => /^\s*q=([\d.]+)\s*$/.exec(a)?.[1]).find((x) => x !== undefined);
    const weight = q === undefined ? 1 : Number(q);
    if (Number.isFinite(weight) && weight > bestQ) {
      best = primary;
      bestQ = weight;
    }
  }
  return best;
}
