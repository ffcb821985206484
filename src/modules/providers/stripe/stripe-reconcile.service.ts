import { randomUUID } from 'node:crypto';
import type Stripe from 'stripe';
import type { Db } from '../../../db/database.ts';
import { releaseLease, renewLease, takeLease } from '../inbox/provider-sync.repository.ts';
import { unavailable } from '../../../errors.ts';
import type { ProviderInbox } from '../inbox/provider-inbox.service.ts';
import { STRIPE_EVENT_TYPES } from './stripe-rules.ts';

const JOB = 'stripe:events';
/** Stripe keeps events for 30 days: nothing older can be listed. */
const MAX_LOOKBACK_MS = 30 * 86_400_000;
/**
 * Each run starts this long before where the last one finished: an event can enter the list with a `created`
 * a little before it becomes visible. Already stored events cost one primary-key probe each.
 */
export const RECONCILE_OVERLAP_MS = 60 * 60_000;
/** A run renews its lease after every page read and every 100 events applied; a crashed run's runs out after this. */
const LEASE_SECONDS = 15 * 60;
const PAGE_SIZE = 100;

export interface ReconcileReport {
  skipped: false;
  /** Events Stripe listed for the window. */
  seen: number;
  /** Events the service had never stored (the webhook missed them): stored and handled now. */
  applied: number;
  alreadyStored: number;
  /** The outcomes of the applied events. */
  outcomes: Record<string, number>;
  from: string;
  to: string;
}
export type ReconcileResult = ReconcileReport | { skipped: true; reason: string };

export interface ReconcileHooks {
  /** Events asked per page of Stripe's list (Stripe's maximum, 100, by default). */
  pageSize?: number;
  onReport?: (r: ReconcileReport) => void;
  onRun?: (outcome: 'completed' | 'skipped' | 'failed') => void;
}

/**
 * Stripe reconciliation: reads Stripe's event list (the types the webhook acts on) from a stored high-water
 * mark, with overlap, and feeds every event through the inbox as the webhook would: stored ones are skipped,
 * missed ones applied, oldest first. One replica at a time, under a lease row.
 */
export function createStripeReconciler(
  db: Db,
  stripe: Stripe | null,
  inbox: ProviderInbox,
  hooks: ReconcileHooks = {},
) {
  const owner = `${process.pid}:${randomUUID()}`;

  async function listWindow(from: Date): Promise<Stripe.Event[]> {
    const client = stripe as Stripe;
    const events: Stripe.Event[] = [];
    let startingAfter: string | undefined;
    for (;;) {
      const page = await client.events.list({
        types: STRIPE_EVENT_TYPES,
        created: { gte: Math.floor(from.getTime() / 1000) },
        limit: hooks.pageSize ?? PAGE_SIZE,
        ...(startingAfter ? { starting_after: startingAfter } : {}),
      });
      events.push(...page.data);
      const last = page.data[page.data.length - 1];
      if (!page.has_more || !last) break;
      startingAfter = last.id;
      if (!(await renewLease(db, JOB, owner, LEASE_SECONDS))) throw new Error('reconciliation lease lost');
    }
    // Stripe lists newest first: apply in the order things happened, so fewer events wait for a grant.
    return events.reverse();
  }

  return {
    /** One reconciliation run; `skipped` when another replica holds the lease. */
    async run(now = new Date()): Promise<ReconcileResult> {
      if (!stripe) throw unavailable('stripe.not_configured');
      const lease = await takeLease(db, JOB, owner, LEASE_SECONDS);
      if (!lease) {
        hooks.onRun?.('skipped');
        return { skipped: true, reason: 'another replica is reconciling' };
      }
      try {
        const oldest = new Date(now.getTime() - MAX_LOOKBACK_MS);
        const mark = lease.highWater ? new Date(lease.highWater.getTime() - RECONCILE_OVERLAP_MS) : oldest;
        const from = mark > oldest ? mark : oldest;
        const events = await listWindow(from);
        const report: ReconcileReport = {
          skipped: false,
          seen: events.length,
          applied: 0,
          alreadyStored: 0,
          outcomes: {},
          from: from.toISOString(),
          to: now.toISOString(),
        };
        for (const [i, event] of events.entries()) {
          if (i > 0 && i % PAGE_SIZE === 0 && !(await renewLease(db, JOB, owner, LEASE_SECONDS))) {
            throw new Error('reconciliation lease lost');
          }
          const r = await inbox.receive({
            provider: 'stripe',
            eventId: event.id,
            type: event.type,
            payload: event,
            source: 'reconcile',
          });
          if (r.duplicate) {
            report.alreadyStored++;
          } else {
            report.applied++;
            report.outcomes[r.status] = (report.outcomes[r.status] ?? 0) + 1;
          }
        }
        // Everything created before `now` has been listed: the next run starts there (less the overlap).
        await releaseLease(db, JOB, owner, { highWater: now, result: report });
        hooks.onRun?.('completed');
        hooks.onReport?.(report);
        return report;
      } catch (err) {
        await releaseLease(db, JOB, owner).catch(() => {});
        hooks.onRun?.('failed');
        throw err;
      }
    },
  };
}

export type StripeReconciler = ReturnType<typeof createStripeReconciler>;
