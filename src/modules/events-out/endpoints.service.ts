import type { Config } from '../../config.ts';
import type { Db, DeliveryStatus, WebhookEndpointRow } from '../../db/database.ts';
import {
  type DeliveryListRow,
  deleteEndpoint,
  findDelivery,
  findEndpoint,
  insertEndpoint,
  listDeliveries,
  listEndpoints,
  rotateEndpointSecret,
  scheduleDeliveryNow,
  updateEndpoint,
} from './events-out.repository.ts';
import { badRequest, conflict, notFound } from '../../errors.ts';
import { eventId } from './event-log.service.ts';
import { newId } from '../../lib/ids.ts';
import { decodeCursor, toPage } from '../../lib/pagination.ts';
import { newWebhookSecret } from './signing.ts';
import { checkWebhookUrl, type Lookup, RefusedUrlError, systemLookup } from './url-guard.ts';

/** After a rotation, the old secret keeps signing beside the new one this long, so receivers can switch. */
export const PREVIOUS_SECRET_GRACE_MS = 24 * 3_600_000;

type EndpointRow = Omit<WebhookEndpointRow, 'created_at' | 'updated_at'> & {
  created_at: Date;
  updated_at: Date;
};

export const toEndpoint = (row: EndpointRow) => ({
  id: row.id,
  url: row.url,
  description: row.description,
  events: row.events,
  lowBalanceThresholds: row.low_balance_thresholds.map(Number),
  disabled: row.disabled,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});
export type Endpoint = ReturnType<typeof toEndpoint>;

/** The public id of a delivery. */
export const deliveryId = (id: number) => `dlv_${id}`;
function parseDeliveryId(id: string): number | undefined {
  const match = /^dlv_([1-9]\d{0,15})$/.exec(id);
  return match ? Number(match[1]) : undefined;
}

export const toDelivery = (row: DeliveryListRow) => ({
  id: deliveryId(row.id),
  endpointId: row.endpoint_id,
  eventId: eventId(row.event_id),
  eventType: row.event_type,
  status: row.status,
  attempts: row.attempts,
  lastStatusCode: row.last_status_code,
  lastError: row.last_error,
  lastAttemptAt: row.last_attempt_at ? new Date(row.last_attempt_at).toISOString() : null,
  nextAttemptAt: row.status === 'pending' ? new Date(row.next_attempt_at).toISOString() : null,
  deliveredAt: row.delivered_at ? new Date(row.delivered_at).toISOString() : null,
  createdAt: new Date(row.created_at).toISOString(),
});
export type Delivery = ReturnType<typeof toDelivery>;

export interface EndpointInput {
  url: string;
  events: string[];
  description?: string | null;
  lowBalanceThresholds?: number[];
}

function thresholds(values: number[] | undefined): number[] | undefined {
  if (!values) return undefined;
  if (new Set(values).size !== values.length) {
    throw badRequest('webhook_endpoint.thresholds_repeat');
  }
  return [...values].sort((a, b) => b - a);
}

/** `["*"]` alone stands for every type; a list that has it and others is refused as ambiguous. */
function subscriptions(events: string[] | undefined): string[] | undefined {
  if (!events) return undefined;
  if (events.includes('*') && events.length > 1) {
    throw badRequest('webhook_endpoint.events_wildcard');
  }
  return [...new Set(events)];
}

/** Webhook endpoints (admin): URL policy, secrets shown once, deliveries listed and retried. */
export function createWebhookEndpointsService(db: Db, config: Config, lookup: Lookup = systemLookup) {
  const policy = { allowPrivateUrls: config.webhooks.allowPrivateUrls, httpsOnly: config.webhooks.httpsOnly };

  async function checkedUrl(url: string): Promise<string> {
    try {
      return (await checkWebhookUrl(url, policy, lookup)).toString();
    } catch (err) {
      if (err instanceof RefusedUrlError) {
        throw badRequest('validation.invalid', { field: 'body.url', reason: err.reason });
      }
      throw err;
    }
  }

  async function endpointOr404(id: string) {
    const row = await findEndpoint(db, id);
    if (!row) throw notFound('webhook_endpoint.not_found');
    return row;
  }

  return {
    /** Creates an endpoint; the response carries its signing secret, which no later read shows. */
    async create(input: EndpointInput) {
      const row = await insertEndpoint(
        db,
        newId('we'),
        {
          url: await checkedUrl(input.url),
          description: input.description ?? null,
          events: subscriptions(input.events) as string[],
          lowBalanceThresholds: thresholds(input.lowBalanceThresholds) ?? [],
        },
        newWebhookSecret(),
      );
      return { ...toEndpoint(row), secret: row.secret };
    },

    async list(limit: number, cursor?: string) {
      const after = decodeCursor(cursor, ['timestamp', 'string']) as [string, string] | undefined;
      const rows = await listEndpoints(db, limit, after && { createdAt: after[0], id: after[1] });
      return toPage(rows, limit, toEndpoint, (r) => [r.created_at_exact, r.id]);
    },

    get: async (id: string) => toEndpoint(await endpointOr404(id)),

    async update(id: string, changes: Partial<EndpointInput> & { disabled?: boolean }): Promise<Endpoint> {
      const row = await updateEndpoint(db, id, {
        url: changes.url === undefined ? undefined : await checkedUrl(changes.url),
        description: changes.description,
        events: subscriptions(changes.events),
        lowBalanceThresholds: thresholds(changes.lowBalanceThresholds),
        disabled: changes.disabled,
      });
      if (!row) throw notFound('webhook_endpoint.not_found');
      return toEndpoint(row);
    },

    async remove(id: string): Promise<Endpoint> {
      const row = await deleteEndpoint(db, id);
      if (!row) throw notFound('webhook_endpoint.not_found');
      return toEndpoint(row);
    },

    /** A new secret, returned once; the old one also signs for PREVIOUS_SECRET_GRACE_MS. */
    async rotateSecret(id: string) {
      const row = await rotateEndpointSecret(
        db,
        id,
        newWebhookSecret(),
        new Date(Date.now() + PREVIOUS_SECRET_GRACE_MS),
      );
      if (!row) throw notFound('webhook_endpoint.not_found');
      return { ...toEndpoint(row), secret: row.secret };
    },

    async deliveries(id: string, limit: number, cursor?: string, status?: DeliveryStatus) {
      await endpointOr404(id);
      const after = decodeCursor(cursor, ['number']) as [number] | undefined;
      const rows = await listDeliveries(db, id, limit, { beforeId: after?.[0], status });
      return toPage(rows, limit, toDelivery, (r) => [r.id]);
    },

    /** Makes a delivery due now, whatever its status; 409 while an attempt of it is running. */
    async retry(id: string, delivery: string): Promise<Delivery> {
      await endpointOr404(id);
      const n = parseDeliveryId(delivery);
      return db.transaction().execute(async (trx) => {
        const row = n === undefined ? undefined : await findDelivery(trx, id, n, true);
        if (!row) throw notFound('webhook_delivery.not_found');
        if (row.lease_until && new Date(row.lease_until).getTime() > Date.now()) {
          throw conflict('webhook_delivery.attempt_running');
        }
        await scheduleDeliveryNow(trx, row.id);
        const after = await findDelivery(trx, id, row.id);
        return toDelivery(after as DeliveryListRow);
      });
    },
  };
}
export type WebhookEndpointsService = ReturnType<typeof createWebhookEndpointsService>;
