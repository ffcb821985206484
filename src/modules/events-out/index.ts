// Events out: the service's event log, webhook endpoints, and the worker that delivers events to them.
export { createDeliveryWorker, type DeliveryWorker } from './delivery-worker.ts';
export { default as webhookEndpointRoutes } from './endpoints.route.ts';
export { createWebhookEndpointsService, type WebhookEndpointsService } from './endpoints.service.ts';
export { default as eventRoutes } from './event-log.route.ts';
export { createEventsService, type EventsService } from './event-log.service.ts';
export type * from './events-out.tables.ts';
