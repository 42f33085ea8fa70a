import { createCharge, renderCharge } from './charges.js';
import { listObject, paginate, type ListOptions } from './collection.js';
import { nowSeconds, ok, type RequestInfo, type SandboxContext } from './context.js';
import { checkChargeAmount, normalizeCurrency } from './currencies.js';
import { checkEmail } from './email.js';
import { parseExpand } from './expand.js';
import {
  arrayOf,
  bool,
  expand,
  initialMetadata,
  int,
  listParams,
  mergeMetadata,
  metadata,
  obj,
  oneOf,
  str,
  unsupportedFields,
  type Metadata,
  type Params,
} from './param-spec.js';
import { resolvePaymentMethod } from './payment-methods.js';
import type { RouteDefinition } from './router.js';
import { docUrl, invalidRequest, resourceMissing, SandboxError, unexpectedState } from './stripe-error.js';
import type { PaymentIntentObject, PaymentIntentStatus } from './wire-types.js';

const ALWAYS_NULL = ['application', 'customer', 'invoice', 'on_behalf_of', 'review'];
const EXPANDABLE = ['latest_charge', 'payment_method'];

const CONFIRMABLE: readonly PaymentIntentStatus[] = [
  'requires_payment_method',
  'requires_confirmation',
  'requires_action',
];
const CANCELABLE: readonly string[] = [
  'requires_payment_method',
  'requires_capture',
  'requires_confirmation',
  'requires_action',
  'processing',
];
const AMOUNT_UPDATABLE: readonly PaymentIntentStatus[] = CONFIRMABLE;

// Real Stripe parameters these endpoints accept but the sandbox does not implement.
const CREATE_UNSUPPORTED = [
  'application_fee_amount',
  'confirmation_token',
  'customer',
  'mandate',
  'mandate_data',
  'off_session',
  'on_behalf_of',
  'payment_method_configuration',
  'payment_method_data',
  'payment_method_options',
  'radar_options',
  'setup_future_usage',
  'shipping',
  'transfer_data',
  'transfer_group',
];
const UPDATE_UNSUPPORTED = [
  'application_fee_amount',
  'capture_method',
  'customer',
  'payment_method_configuration',
  'payment_method_data',
  'payment_method_options',
  'setup_future_usage',
  'shipping',
  'transfer_data',
  'transfer_group',
];
const CONFIRM_UNSUPPORTED = [
  'capture_method',
  'client_secret',
  'confirmation_token',
  'mandate',
  'mandate_data',
  'off_session',
  'payment_method_data',
  'payment_method_options',
  'radar_options',
  'setup_future_usage',
  'shipping',
];

const createSpec = obj(
  {
    amount: int(),
    currency: str(),
    automatic_payment_methods: obj({ enabled: bool, allow_redirects: oneOf(['always', 'never']) }, [
      'enabled',
    ]),
    capture_method: oneOf(['automatic', 'automatic_async', 'manual']),
    confirm: bool,
    confirmation_method: oneOf(['automatic', 'manual']),
    description: str(1000),
    error_on_requires_action: bool,
    expand,
    metadata: metadata(),
    allowed_payment_method_types: arrayOf(str(), 50),
    payment_method: str(),
    payment_method_types: arrayOf(str(), 50),
    receipt_email: str(),
    return_url: str(),
    statement_descriptor: str(22),
    statement_descriptor_suffix: str(22),
    use_stripe_sdk: bool,
    ...unsupportedFields(CREATE_UNSUPPORTED),
  },
  ['amount', 'currency'],
);

const updateSpec = obj({
  amount: int(),
  currency: str(),
  description: str(1000, { emptyUnsets: true }),
  expand,
  metadata: metadata(true),
  payment_method: str(),
  payment_method_types: arrayOf(str(), 50),
  receipt_email: str(5000, { emptyUnsets: true }),
  statement_descriptor: str(22, { emptyUnsets: true }),
  statement_descriptor_suffix: str(22, { emptyUnsets: true }),
  ...unsupportedFields(UPDATE_UNSUPPORTED),
});

const confirmSpec = obj({
  error_on_requires_action: bool,
  expand,
  payment_method: str(),
  payment_method_types: arrayOf(str(), 50),
  receipt_email: str(5000, { emptyUnsets: true }),
  return_url: str(),
  use_stripe_sdk: bool,
  ...unsupportedFields(CONFIRM_UNSUPPORTED),
});

const cancelSpec = obj({
  cancellation_reason: oneOf(['abandoned', 'duplicate', 'fraudulent', 'requested_by_customer']),
  expand,
});

export function getPaymentIntent(ctx: SandboxContext, id: string, param = 'intent'): PaymentIntentObject {
  const intent = ctx.state.paymentIntents.get(id);
  if (!intent) throw resourceMissing('payment_intent', id, param);
  return intent;
}

/**
 * Stripe refuses API calls that would pay, cancel or re-price an intent a Checkout Session made; the session
 * owns it (and expiring the session cancels it). Other updates, such as metadata, are allowed.
 */
function refuseIfCheckoutOwned(ctx: SandboxContext, intent: PaymentIntentObject): void {
  if (ctx.state.checkoutIntents.has(intent.id)) {
    throw invalidRequest('You cannot perform this action on PaymentIntents created by Checkout.');
  }
}

export function renderPaymentIntent(
  ctx: SandboxContext,
  intent: PaymentIntentObject,
  fields: ReadonlySet<string>,
): unknown {
  if (fields.size === 0) return intent;
  const out: Record<string, unknown> = { ...intent };
  if (fields.has('latest_charge') && intent.latest_charge) {
    const charge = ctx.state.charges.get(intent.latest_charge);
    if (charge) out['latest_charge'] = renderCharge(ctx, charge, new Set());
  }
  if (fields.has('payment_method') && intent.payment_method) {
    out['payment_method'] = ctx.state.paymentMethods.get(intent.payment_method) ?? intent.payment_method;
  }
  return out;
}

export interface NewIntent {
  amount: number;
  currency: string;
  metadata: Metadata;
  description: string | null;
  receipt_email: string | null;
  statement_descriptor: string | null;
  statement_descriptor_suffix: string | null;
  payment_method_types: string[] | null;
  automatic_payment_methods: PaymentIntentObject['automatic_payment_methods'];
  capture_method: PaymentIntentObject['capture_method'];
  confirmation_method: PaymentIntentObject['confirmation_method'];
  /** An already resolved PaymentMethod id: the intent then starts in `requires_confirmation`. */
  payment_method?: string;
}

/** Adds a PaymentIntent and records `payment_intent.created`. */
export function insertPaymentIntent(
  ctx: SandboxContext,
  input: NewIntent,
  request: RequestInfo | null,
): PaymentIntentObject {
  const id = ctx.ids.id('pi', 24);
  const apm = input.automatic_payment_methods;
  const intent: PaymentIntentObject = {
    id,
    object: 'payment_intent',
    amount: input.amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: apm,
    canceled_at: null,
    cancellation_reason: null,
    capture_method: input.capture_method,
    client_secret: `${id}_secret_${ctx.ids.random(25)}`,
    confirmation_method: input.confirmation_method,
    created: nowSeconds(),
    currency: input.currency,
    customer: null,
    description: input.description,
    invoice: null,
    last_payment_error: null,
    latest_charge: null,
    livemode: false,
    metadata: input.metadata,
    next_action: null,
    on_behalf_of: null,
    payment_method: input.payment_method ?? null,
    payment_method_configuration_details: apm?.enabled
      ? { id: ctx.paymentMethodConfigurationId, parent: null }
      : null,
    payment_method_options: {
      card: { installments: null, mandate_options: null, network: null, request_three_d_secure: 'automatic' },
    },
    payment_method_types: input.payment_method_types ?? ['card'],
    processing: null,
    receipt_email: input.receipt_email,
    review: null,
    setup_future_usage: null,
    shipping: null,
    statement_descriptor: input.statement_descriptor,
    statement_descriptor_suffix: input.statement_descriptor_suffix,
    status: input.payment_method === undefined ? 'requires_payment_method' : 'requires_confirmation',
    transfer_data: null,
    transfer_group: null,
  };
  ctx.state.paymentIntents.add(intent);
  ctx.events.emit('payment_intent.created', intent, request ?? { id: null, idempotency_key: null });
  return intent;
}

function missingPaymentMethod(): SandboxError {
  return unexpectedState(
    "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the " +
      'PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.',
  );
}

/** Stripe refuses to confirm without `return_url` when redirect-based payment methods are allowed. */
function checkReturnUrl(apm: PaymentIntentObject['automatic_payment_methods'], returnUrl: unknown): void {
  if (apm?.enabled && apm.allow_redirects !== 'never' && typeof returnUrl !== 'string') {
    throw invalidRequest(
      'A `return_url` must be specified because this Payment Intent is configured to automatically accept the ' +
        'payment methods enabled in the Dashboard, some of which may require a full page redirect to succeed. If you ' +
        'do not want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` ' +
        'and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.',
      'return_url',
    );
  }
}

function checkReturnUrlFormat(returnUrl: unknown): void {
  if (typeof returnUrl !== 'string') return;
  try {
    new URL(returnUrl);
  } catch {
    throw invalidRequest('Not a valid URL', 'return_url', 'url_invalid');
  }
}

/**
 * Charges the PaymentIntent's payment method. Success: `succeeded` and events. Decline: the failed
 * charge and events are recorded, then a 402 card_error carrying the PaymentIntent is thrown. A card whose
 * issuer asks for 3D Secure, not yet `authenticated`, leaves the intent `requires_action` and charges nothing.
 */
export function chargeIntent(
  ctx: SandboxContext,
  intent: PaymentIntentObject,
  paymentMethodId: string,
  request: RequestInfo | null,
  authenticated = false,
  returnUrl?: string,
): void {
  const req = request ?? { id: null, idempotency_key: null };
  const { pm, card } = resolvePaymentMethod(ctx, paymentMethodId, 'payment_method');
  intent.payment_method = pm.id;
  intent.next_action = null;
  if (card.authentication === 'required' && !authenticated) {
    intent.status = 'requires_action';
    intent.last_payment_error = null;
    // Stripe's challenge page is addressed with the intent's client secret in its query string
    // (hooks.stripe.com/3d_secure_2/hosted?...&payment_intent_client_secret=...): a redirect for a confirmation
    // with a return_url, else for Stripe.js to open.
    const challenge =
      `${ctx.baseUrl()}/_sandbox/3d_secure_2/hosted?payment_intent=${intent.id}` +
      `&payment_intent_client_secret=${intent.client_secret}`;
    intent.next_action =
      returnUrl === undefined
        ? {
            type: 'use_stripe_sdk',
            use_stripe_sdk: { type: 'three_d_secure_redirect', stripe_js: challenge },
          }
        : { type: 'redirect_to_url', redirect_to_url: { return_url: returnUrl, url: challenge } };
    ctx.events.emit('payment_intent.requires_action', intent, req);
    return;
  }
  const charge = createCharge(ctx, intent, pm, card);
  intent.latest_charge = charge.id;
  if (card.decline) {
    const { code, decline_code, message, param } = card.decline;
    intent.status = 'requires_payment_method';
    intent.payment_method = null;
    intent.last_payment_error = {
      charge: charge.id,
      code,
      ...(decline_code === undefined ? {} : { decline_code }),
      doc_url: docUrl(code),
      message,
      ...(param === undefined ? {} : { param }),
      payment_method: pm,
      type: 'card_error',
    };
    ctx.events.emit('charge.failed', charge, req);
    ctx.events.emit('payment_intent.payment_failed', intent, req);
    throw new SandboxError(402, {
      type: 'card_error',
      code,
      decline_code,
      message,
      param,
      charge: charge.id,
      payment_intent: intent,
      payment_method: pm,
    });
  }
  intent.status = 'succeeded';
  intent.amount_received = intent.amount;
  intent.last_payment_error = null;
  ctx.events.emit('charge.succeeded', charge, req);
  ctx.events.emit('payment_intent.succeeded', intent, req);
}

/**
 * The customer's answer to the 3D Secure challenge of an intent in `requires_action` (the control API's
 * `POST /_sandbox/payment_intents/:id/authenticate`). Passed: the card is charged, as Stripe does once Stripe.js
 * reports the authentication. Failed: back to `requires_payment_method` with Stripe's
 * `payment_intent_authentication_failure` and `payment_intent.payment_failed`. False when there is nothing to
 * authenticate.
 */
export function authenticateIntent(
  ctx: SandboxContext,
  intent: PaymentIntentObject,
  passed: boolean,
  request: RequestInfo,
): boolean {
  if (intent.status !== 'requires_action' || intent.payment_method === null) return false;
  if (passed) {
    chargeIntent(ctx, intent, intent.payment_method, request, true);
    return true;
  }
  const pm = ctx.state.paymentMethods.get(intent.payment_method) ?? null;
  intent.status = 'requires_payment_method';
  intent.next_action = null;
  intent.payment_method = null;
  intent.last_payment_error = {
    code: 'payment_intent_authentication_failure',
    doc_url: docUrl('payment_intent_authentication_failure'),
    message:
      'The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new ' +
      'PaymentMethod to attempt to fulfill this PaymentIntent again.',
    ...(pm ? { payment_method: pm } : {}),
    type: 'invalid_request_error',
  };
  ctx.events.emit('payment_intent.payment_failed', intent, request);
  return true;
}

/**
 * Since API version 2026-09-30.endive (the SDK's pinned 2026-10-28.endive included) `payment_method_types` can no
 * longer be written on a PaymentIntent's create, update or confirm: "Passing payment_method_types on this API
 * version returns a 400 error with the code payment_method_types_no_longer_supported"
 * (docs.stripe.com/changelog/endive/2026-09-30/removes-the-payment-method-types-parameter-from-payment-intents-and-
 * setup-intents). `allowed_payment_method_types` takes its place. Stripe publishes the code, not the words.
 */
export function refusePaymentMethodTypes(params: Params): void {
  if (params['payment_method_types'] === undefined) return;
  throw invalidRequest(
    'payment_method_types can no longer be set on this API version. Use allowed_payment_method_types, ' +
      'excluded_payment_method_types or dynamic payment methods instead.',
    'payment_method_types',
    'payment_method_types_no_longer_supported',
  );
}

/**
 * `allowed_payment_method_types`: Stripe keeps the types compatible with the payment and drops the others
 * silently; of the sandbox's types that is `card` only, and a list without it leaves nothing to pay with.
 */
export function allowedPaymentMethodTypes(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const kept = (value as string[]).filter((type) => type === 'card');
  if (kept.length === 0) {
    throw invalidRequest(
      'None of the allowed_payment_method_types can be used with this payment; the Stripe sandbox supports "card" only.',
      'allowed_payment_method_types',
      'payment_intent_invalid_parameter',
    );
  }
  return kept;
}

function createIntent(ctx: SandboxContext, params: Params, request: RequestInfo): PaymentIntentObject {
  refusePaymentMethodTypes(params);
  const currency = normalizeCurrency(params['currency'] as string);
  const amount = params['amount'] as number;
  checkChargeAmount(amount, currency);
  const pmTypes = allowedPaymentMethodTypes(params['allowed_payment_method_types']);
  const apmParam = params['automatic_payment_methods'] as
    { enabled: boolean; allow_redirects?: string } | undefined;
  if (pmTypes !== undefined && apmParam !== undefined) {
    throw invalidRequest(
      'You may only specify one of these parameters: allowed_payment_method_types, automatic_payment_methods.',
      'automatic_payment_methods',
      'parameters_exclusive',
    );
  }
  if (params['capture_method'] === 'manual') {
    throw invalidRequest(
      "The Stripe sandbox does not support capture_method 'manual'; use 'automatic' or 'automatic_async'.",
      'capture_method',
    );
  }
  // Since 2023-08-16 Stripe enables automatic payment methods unless the types are given.
  const apm: PaymentIntentObject['automatic_payment_methods'] =
    pmTypes !== undefined
      ? null
      : apmParam === undefined
        ? { allow_redirects: 'always', enabled: true }
        : apmParam.enabled
          ? { allow_redirects: apmParam.allow_redirects === 'never' ? 'never' : 'always', enabled: true }
          : null;
  const paymentMethod = params['payment_method'] as string | undefined;
  const confirm = params['confirm'] === true;
  checkEmail(params['receipt_email'], 'receipt_email');
  checkReturnUrlFormat(params['return_url']);
  if (confirm) {
    if (paymentMethod === undefined) throw missingPaymentMethod();
    checkReturnUrl(apm, params['return_url']);
  }
  const pm =
    paymentMethod === undefined ? undefined : resolvePaymentMethod(ctx, paymentMethod, 'payment_method').pm;

  const intent = insertPaymentIntent(
    ctx,
    {
      amount,
      currency,
      metadata: initialMetadata(params['metadata']),
      description: (params['description'] as string | undefined) ?? null,
      receipt_email: (params['receipt_email'] as string | undefined) ?? null,
      statement_descriptor: (params['statement_descriptor'] as string | undefined) ?? null,
      statement_descriptor_suffix: (params['statement_descriptor_suffix'] as string | undefined) ?? null,
      payment_method_types: pmTypes ?? null,
      automatic_payment_methods: apm,
      capture_method: params['capture_method'] === 'automatic' ? 'automatic' : 'automatic_async',
      confirmation_method: params['confirmation_method'] === 'manual' ? 'manual' : 'automatic',
      ...(pm ? { payment_method: pm.id } : {}),
    },
    request,
  );
  if (confirm && intent.payment_method) {
    const returnUrl = params['return_url'] as string | undefined;
    chargeIntent(ctx, intent, intent.payment_method, request, false, returnUrl);
  }
  return intent;
}

function updateIntent(ctx: SandboxContext, intent: PaymentIntentObject, params: Params): void {
  refusePaymentMethodTypes(params);
  const statusOnlyFields = ['amount', 'currency', 'payment_method'].filter((f) => params[f] !== undefined);
  for (const field of statusOnlyFields) {
    if (!AMOUNT_UPDATABLE.includes(intent.status)) {
      throw unexpectedState(
        `This PaymentIntent's ${field} could not be updated because it has a status of ${intent.status}. You may ` +
          `only update the ${field} of a PaymentIntent with one of the following statuses: ${AMOUNT_UPDATABLE.join(', ')}.`,
        field,
      );
    }
  }
  if (intent.status === 'canceled') {
    const other = Object.keys(params).find((k) => k !== 'metadata' && k !== 'expand');
    if (other !== undefined) {
      throw unexpectedState(
        `You cannot update this PaymentIntent's ${other} because it has a status of canceled.`,
        other,
      );
    }
  }
  const currency =
    params['currency'] === undefined ? intent.currency : normalizeCurrency(params['currency'] as string);
  const amount = (params['amount'] as number | undefined) ?? intent.amount;
  if (params['amount'] !== undefined || params['currency'] !== undefined) checkChargeAmount(amount, currency);
  checkEmail(params['receipt_email'], 'receipt_email');
  const paymentMethod = params['payment_method'] as string | undefined;
  const pm =
    paymentMethod === undefined ? undefined : resolvePaymentMethod(ctx, paymentMethod, 'payment_method').pm;

  intent.amount = amount;
  intent.currency = currency;
  if (pm) {
    intent.payment_method = pm.id;
    if (intent.status === 'requires_payment_method') intent.status = 'requires_confirmation';
  }
  for (const field of [
    'description',
    'receipt_email',
    'statement_descriptor',
    'statement_descriptor_suffix',
  ] as const) {
    if (params[field] !== undefined) intent[field] = params[field] as string | null;
  }
  intent.metadata = mergeMetadata(intent.metadata, params['metadata'] as Metadata | null | undefined);
  // Stripe clears the previous error on any update.
  intent.last_payment_error = null;
}

function confirmIntent(
  ctx: SandboxContext,
  intent: PaymentIntentObject,
  params: Params,
  request: RequestInfo,
): void {
  refusePaymentMethodTypes(params);
  if (intent.status === 'succeeded') {
    throw unexpectedState(
      'You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed.',
    );
  }
  if (!CONFIRMABLE.includes(intent.status)) {
    throw unexpectedState(
      `You cannot confirm this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with ` +
        `one of the following statuses may be confirmed: ${CONFIRMABLE.join(', ')}.`,
    );
  }
  const paymentMethod = (params['payment_method'] as string | undefined) ?? intent.payment_method;
  if (paymentMethod === null) throw missingPaymentMethod();
  checkReturnUrlFormat(params['return_url']);
  checkReturnUrl(intent.automatic_payment_methods, params['return_url']);
  checkEmail(params['receipt_email'], 'receipt_email');
  const { pm } = resolvePaymentMethod(ctx, paymentMethod, 'payment_method');
  if (params['receipt_email'] !== undefined) intent.receipt_email = params['receipt_email'] as string | null;
  chargeIntent(ctx, intent, pm.id, request, false, params['return_url'] as string | undefined);
}

function cancelIntent(
  ctx: SandboxContext,
  intent: PaymentIntentObject,
  params: Params,
  request: RequestInfo,
): void {
  if (!CANCELABLE.includes(intent.status)) {
    throw unexpectedState(
      `You cannot cancel this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with ` +
        `one of the following statuses may be canceled: ${CANCELABLE.join(', ')}.`,
    );
  }
  intent.status = 'canceled';
  intent.canceled_at = nowSeconds();
  intent.cancellation_reason = (params['cancellation_reason'] as string | undefined) ?? null;
  ctx.events.emit('payment_intent.canceled', intent, request);
}

export function paymentIntentRoutes(ctx: SandboxContext): RouteDefinition[] {
  const render = (intent: PaymentIntentObject, params: Params) =>
    ok(renderPaymentIntent(ctx, intent, parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL)));
  return [
    {
      method: 'POST',
      path: '/v1/payment_intents',
      spec: createSpec,
      handler: (params, _path, request) => {
        const fields = parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL);
        return ok(renderPaymentIntent(ctx, createIntent(ctx, params, request), fields));
      },
    },
    {
      method: 'GET',
      path: '/v1/payment_intents',
      spec: obj({ ...listParams, ...unsupportedFields(['customer']) }),
      handler: (params) => {
        const fields = parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL, true);
        const { paymentIntents } = ctx.state;
        const page = paginate(
          paymentIntents.view(),
          params as ListOptions,
          paymentIntents.cursor('payment_intent'),
        );
        return ok(listObject(page, (pi) => renderPaymentIntent(ctx, pi, fields), '/v1/payment_intents'));
      },
    },
    {
      method: 'GET',
      path: '/v1/payment_intents/:intent',
      spec: obj({ expand, client_secret: str() }),
      handler: (params, [id = '']) => render(getPaymentIntent(ctx, id), params),
    },
    {
      method: 'POST',
      path: '/v1/payment_intents/:intent',
      spec: updateSpec,
      handler: (params, [id = '']) => {
        const intent = getPaymentIntent(ctx, id);
        parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL);
        if (['amount', 'currency', 'payment_method'].some((field) => params[field] !== undefined))
          refuseIfCheckoutOwned(ctx, intent);
        updateIntent(ctx, intent, params);
        return render(intent, params);
      },
    },
    {
      method: 'POST',
      path: '/v1/payment_intents/:intent/confirm',
      spec: confirmSpec,
      handler: (params, [id = ''], request) => {
        const intent = getPaymentIntent(ctx, id);
        parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL);
        refuseIfCheckoutOwned(ctx, intent);
        confirmIntent(ctx, intent, params, request);
        return render(intent, params);
      },
    },
    {
      method: 'POST',
      path: '/v1/payment_intents/:intent/cancel',
      spec: cancelSpec,
      handler: (params, [id = ''], request) => {
        const intent = getPaymentIntent(ctx, id);
        parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL);
        refuseIfCheckoutOwned(ctx, intent);
        cancelIntent(ctx, intent, params, request);
        return render(intent, params);
      },
    },
  ];
}
