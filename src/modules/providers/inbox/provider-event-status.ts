import { type Static, Type } from '@sinclair/typebox';

/**
 * What the inbox settled a provider event as: the one definition (the table type, the handlers' outcomes,
 * the provider-event routes and the webhook answers use it). `failed` is the inbox's own, when a handler throws.
 */
const statuses = () =>
  [
    Type.Literal('processed'),
    Type.Literal('ignored'),
    Type.Literal('parked'),
    Type.Literal('failed'),
  ] as const;

/** The stored status of a provider event, with the route's description. */
export const providerEventStatusSchema = (description?: string) =>
  Type.Union([...statuses()], description === undefined ? {} : { description });
export type ProviderEventStatus = Static<ReturnType<typeof providerEventStatusSchema>>;

/** A webhook delivery's answer: the event's status, or `duplicate` when its id was stored before. */
export const deliveryOutcomeSchema = (description?: string) =>
  Type.Union([...statuses(), Type.Literal('duplicate')], description === undefined ? {} : { description });
export type DeliveryOutcome = Static<ReturnType<typeof deliveryOutcomeSchema>>;
