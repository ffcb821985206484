import { sql } from 'kysely';
import type { Executor } from '../../../db/database.ts';

/**
 * Serializes, until the transaction ends, the Stripe events of one PaymentIntent: a refund that finds no
 * purchase yet and the grant that first records the PaymentIntent cannot miss each other. Taken before
 * the purchase row lock, in every path, so the two locks are always taken in the same order.
 */
export async function lockPaymentIntent(ex: Executor, paymentIntentId: string) {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`stripe:payment_intent:${paymentIntentId}`}, 0))`.execute(
    ex,
  );
}
