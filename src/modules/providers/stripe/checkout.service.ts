import type Stripe from 'stripe';
import type { Config } from '../../../config.ts';
import type { Db } from '../../../db/database.ts';
import { findPackage } from '../../catalog/index.ts';
import {
  findPurchaseByProviderRef,
  insertPurchase,
  type Purchase,
  type PurchaseLifecycle,
  toPurchase,
  updatePurchase,
} from '../../purchases/index.ts';
import { badRequest, conflict, notFound, unavailable } from '../../../errors.ts';
import { newId } from '../../../lib/ids.ts';
import type { ProviderInbox } from '../inbox/provider-inbox.service.ts';
import type { StripeHandler } from './stripe-handler.ts';
import { POLL_READ } from './stripe.client.ts';

export interface CheckoutInput {
  userId: string;
  packageId: string;
  successUrl?: string;
  cancelUrl?: string;
}

export interface CheckoutSession {
  sessionId: string;
  url: string;
  purchaseId: string;
  package: { id: string; name: string; credits: number; priceCents: number; currency: string };
}

/** Why a Checkout Session could not be created, for the log (the client gets a plain 503). */
function describeStripeError(err: unknown): string {
  const e = err as { type?: unknown; statusCode?: unknown; message?: unknown };
  const kind = typeof e?.type === 'string' ? e.type : 'error';
  return `${kind}${typeof e?.statusCode === 'number' ? ` (HTTP ${e.statusCode})` : ''}`;
}

/**
 * Starts Stripe Checkout for a credit package: a `pending` purchase (a snapshot of the package), then a
 * Checkout Session that points back at it. The webhook, not this call, grants the credits.
 * (About 150 lines: two routes' services, `create` and the return page's read, over one Stripe client; the
 * purchase reads it uses are moving to the purchases module, after which it splits along those two.)
 */
export function createCheckoutService(
  db: Db,
  config: Config,
  stripe: Stripe | null,
  deps: {
    lifecycle: PurchaseLifecycle;
    inbox: ProviderInbox;
    stripeHandler: StripeHandler;
    /** Stripe could not be read on the return page: logged, the purchase is answered as it is. */
    onSessionReadError?: (err: unknown, sessionId: string) => void;
  },
) {
  const { lifecycle } = deps;
  const { allowedOrigins } = config.checkout;

  /** A redirect from the request must be on an allowed origin (no open redirects); else the configured default. */
  function redirectUrl(given: string | undefined, fallback: string | undefined, field: string, env: string) {
    if (given !== undefined) {
      let origin: string;
      try {
        origin = new URL(given).origin;
      } catch {
        throw badRequest('checkout.url_invalid', { field });
      }
      if (!allowedOrigins.includes(origin)) {
        throw badRequest('checkout.url_origin', { field, origin });
      }
      // The string goes to Stripe as given: `{CHECKOUT_SESSION_ID}` must stay literal for Stripe to fill.
      return given;
    }
    if (fallback) return fallback;
    throw badRequest('checkout.url_required', { field, variable: env });
  }

  return {
    /**
     * The purchase of a Checkout Session, for the success page to poll. While it is pending, the session is
     * read from Stripe first: paid → fulfilled exactly as the webhook would (the same handler, locks and grant
     * key, so once per session whichever comes first); expired → the purchase expires. Someone else's or an
     * unknown session: 404.
     */
    async session(sessionId: string, viewer: { userId: string; privileged: boolean }): Promise<Purchase> {
      const found = await findPurchaseByProviderRef(db, 'stripe', sessionId);
      if (!found || (!viewer.privileged && found.user_id !== viewer.userId))
        throw notFound('checkout.session_not_found');
      if (found.status !== 'pending' || !stripe) return toPurchase(found);
      let session: Stripe.Checkout.Session;
      try {
        session = await stripe.checkout.sessions.retrieve(sessionId, {}, POLL_READ);
      } catch (err) {
        // The success page keeps polling; the webhook or reconciliation fulfils it meanwhile.
        deps.onSessionReadError?.(err, sessionId);
        return toPurchase(found);
      }
      const type =
        session.status === 'complete'
          ? 'checkout.session.completed'
          : session.status === 'expired'
            ? 'checkout.session.expired'
            : null;
      if (type) {
        await deps.inbox.run('stripe', (ctx) =>
          deps.stripeHandler.sessionEvent(ctx, type, session as unknown as Record<string, unknown>, null),
        );
      }
      const now = await findPurchaseByProviderRef(db, 'stripe', sessionId);
      return toPurchase(now ?? found);
    },

    async create(input: CheckoutInput): Promise<CheckoutSession> {
      if (!stripe) throw unavailable('checkout.not_configured');
      const successUrl = redirectUrl(
        input.successUrl,
        config.checkout.successUrl,
        'successUrl',
        'CHECKOUT_SUCCESS_URL',
      );
      const cancelUrl = redirectUrl(
        input.cancelUrl,
        config.checkout.cancelUrl,
        'cancelUrl',
        'CHECKOUT_CANCEL_URL',
      );

      const pkg = await findPackage(db, input.packageId);
      if (!pkg) throw notFound('package.not_found');
      if (!pkg.is_active) throw conflict('package.inactive');
      const purchase = await insertPurchase(db, {
        id: newId('pur'),
        userId: input.userId,
        pkg,
        provider: 'stripe',
        providerRef: null,
        status: 'pending',
      });

      const metadata = { purchaseId: purchase.id, userId: purchase.user_id, packageId: pkg.id };
      const lineItem: Stripe.Checkout.SessionCreateParams.LineItem = pkg.stripe_price_id
        ? { price: pkg.stripe_price_id, quantity: 1 }
        : {
            price_data: {
              currency: purchase.currency,
              unit_amount: purchase.price,
              product_data: { name: pkg.name, ...(pkg.description ? { description: pkg.description } : {}) },
            },
            quantity: 1,
          };

      let session: Stripe.Checkout.Session;
      try {
        session = await stripe.checkout.sessions.create(
          {
            mode: 'payment',
            line_items: [lineItem],
            client_reference_id: purchase.id,
            metadata,
            payment_intent_data: { metadata },
            success_url: successUrl,
            cancel_url: cancelUrl,
          },
          // Derived from the purchase: the SDK's retries (and ours) can never open a second session for it.
          { idempotencyKey: `checkout-session:${purchase.id}` },
        );
        if (!session.url) throw new Error('Stripe returned a Checkout Session without a url');
      } catch (err) {
        // No purchase stays pending forever: this one will never be paid.
        await lifecycle.markFailed(db, purchase.id).catch(() => {});
        const error = unavailable('checkout.stripe_unavailable');
        error.cause = err;
        error.message = `${error.message} [${describeStripeError(err)}]`;
        throw error;
      }

      await updatePurchase(db, purchase.id, { provider_ref: session.id });
      return {
        sessionId: session.id,
        url: session.url,
        purchaseId: purchase.id,
        package: {
          id: pkg.id,
          name: pkg.name,
          credits: purchase.credits,
          priceCents: purchase.price,
          currency: purchase.currency,
        },
      };
    },
  };
}

export type CheckoutService = ReturnType<typeof createCheckoutService>;
