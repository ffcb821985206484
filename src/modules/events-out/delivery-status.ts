import { type Static, Type } from '@sinclair/typebox';

/** Where a delivery stands: the one definition the table type, the list filter and the API's answer share. */
export const DeliveryStatusSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('delivered'),
  Type.Literal('failed'),
]);
export type DeliveryStatus = Static<typeof DeliveryStatusSchema>;
