import { type Static, Type } from '@sinclair/typebox';
import { callerUserId } from '../../../http/auth.ts';
import { errors, ok } from '../../../http/openapi.ts';
import { anySecurity, bearerSecurity, Id, PurchaseSchema, UserId } from '../../../http/schemas.ts';
import type { App } from '../../../http/types.ts';

const RedirectUrl = Type.String({
  minLength: 1,
  maxLength: 2048,
  pattern: '^https?://[^\\s]+$',
  description:
    'Must be on an origin listed in CHECKOUT_ALLOWED_ORIGINS; `{CHECKOUT_SESSION_ID}` is passed through for Stripe to fill',
});

const checkoutFields = {
  packageId: Id,
  successUrl: Type.Optional(RedirectUrl),
  cancelUrl: Type.Optional(RedirectUrl),
};

const example = {
  packageId: 'pkg_01JD2V4B3Y7Q8N5K6M9P0R1S2T',
  successUrl: 'https://app.example.com/credits/done?session={CHECKOUT_SESSION_ID}',
  cancelUrl: 'https://app.example.com/credits',
};
export const CheckoutBody = Type.Object(checkoutFields, { additionalProperties: false, examples: [example] });
export const ApiCheckoutBody = Type.Object(
  { userId: UserId, ...checkoutFields },
  { additionalProperties: false, examples: [{ userId: 'user_42', ...example }] },
);

export const CheckoutSessionSchema = Type.Object(
  {
    sessionId: Type.String({ description: 'The Stripe Checkout Session id' }),
    url: Type.String({ description: "Stripe's hosted payment page: redirect the user here" }),
    purchaseId: Type.String({ description: 'The pending purchase; the Stripe webhook completes it' }),
    package: Type.Object({
      id: Type.String(),
      name: Type.String(),
      credits: Type.Integer(),
      priceCents: Type.Integer({ description: "In the currency's minor units" }),
      currency: Type.String(),
    }),
  },
  { $id: 'CheckoutSession' },
);
export type CheckoutSessionSchema = Static<typeof CheckoutSessionSchema>;

const description =
  'Creates a `pending` purchase and a Stripe Checkout Session (`mode=payment`) for it. ' +
  'Credits are granted by the Stripe webhook once the payment succeeds. ' +
  '503 when Stripe is not configured or unreachable (the purchase is then marked `failed`).';

const created = 'The Checkout Session: send the user to `url`; `purchaseId` is the pending purchase';
const checkoutErrors = errors(
  401,
  403,
  [404, 'No such package'],
  [409, 'The package is not active'],
  413,
  415,
  [503, 'Stripe is not configured or unreachable; the purchase is marked failed'],
);

/** Stripe Checkout for a credit package: for the caller (user JWT), or for a user (API key `checkout:create`). */
export default async function checkoutRoutes(app: App) {
  app.post(
    '/credits/checkout',
    {
      onRequest: app.authorize(['user']),
      schema: {
        operationId: 'createCheckout',
        tags: ['credits'],
        summary: 'Start a Stripe Checkout for the caller',
        description,
        security: bearerSecurity,
        body: CheckoutBody,
        response: { 201: ok(CheckoutSessionSchema, created), ...checkoutErrors },
      },
    },
    async (request, reply) =>
      reply.ok(await app.services.checkout.create({ ...request.body, userId: callerUserId(request) }), 201),
  );

  app.post(
    '/credits/checkout/api',
    {
      onRequest: app.authorize(['checkout:create']),
      schema: {
        operationId: 'createCheckoutForUser',
        tags: ['credits'],
        summary: 'Start a Stripe Checkout for a user (backend services)',
        description: `For backend services holding an API key with \`checkout:create\`: the user is \`userId\` in the body. ${description}`,
        security: anySecurity,
        body: ApiCheckoutBody,
        response: { 201: ok(CheckoutSessionSchema, created), ...checkoutErrors },
      },
    },
    async (request, reply) => reply.ok(await app.services.checkout.create(request.body), 201),
  );

  app.get(
    '/credits/checkout/:sessionId',
    {
      onRequest: app.authorize(['user']),
      schema: {
        operationId: 'getCheckoutSession',
        tags: ['credits'],
        summary: 'The purchase of a Checkout Session; fulfils it if Stripe says it is paid',
        description:
          'For the success page: poll this (e.g. every 2 s for a minute) instead of waiting for the webhook. ' +
          'While the purchase is `pending`, the service first reads the Checkout Session from Stripe: paid, it is ' +
          'fulfilled exactly as the webhook would (once per session, whichever comes first); expired, the purchase ' +
          "becomes `expired`. If Stripe cannot be read, the purchase is answered as it is. For the purchase's " +
          "user, and for admin and ops; another user's or an unknown session: 404.",
        security: bearerSecurity,
        params: Type.Object({ sessionId: Id }),
        response: {
          200: ok(
            Type.Object({ purchase: PurchaseSchema }),
            "The session's purchase, fulfilled or expired first when Stripe says so",
          ),
          ...errors(401, 403, [404, "No such Checkout Session, or another user's"]),
        },
      },
    },
    async (request, reply) => {
      const p = request.principal;
      const privileged = p?.kind === 'user' && (p.roles.includes('admin') || p.roles.includes('ops'));
      const purchase = await app.services.checkout.session(request.params.sessionId, {
        userId: callerUserId(request),
        privileged,
      });
      return reply.ok({ purchase });
    },
  );
}
