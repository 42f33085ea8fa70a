import { listObject, paginate, resolveLimit, type ListOptions } from './collection.js';
import { nowSeconds, ok, type RequestInfo, type SandboxContext, type SessionExtras } from './context.js';
import { checkChargeAmount, checkMinorUnitStep, maxAmount, normalizeCurrency } from './currencies.js';
import { checkEmail } from './email.js';
import { NO_REQUEST, type EventRequestInfo } from './event-log.js';
import { parseExpand } from './expand.js';
import {
  arrayOf,
  expand,
  initialMetadata,
  int,
  listParams,
  metadata,
  obj,
  oneOf,
  str,
  unsupported,
  unsupportedFields,
  type Params,
} from './param-spec.js';
import {
  allowedPaymentMethodTypes,
  chargeIntent,
  insertPaymentIntent,
  refusePaymentMethodTypes,
  renderPaymentIntent,
} from './payment-intents.js';
import { resolvePaymentMethod } from './payment-methods.js';
import type { RouteDefinition } from './router.js';
import { invalidRequest, resourceMissing } from './stripe-error.js';
import type { CheckoutSessionObject, LineItemObject } from './wire-types.js';

const EXPANDABLE = ['payment_intent', 'line_items'];
const ALWAYS_NULL = ['customer', 'invoice', 'payment_link', 'setup_intent', 'subscription'];
const MIN_EXPIRY_S = 30 * 60;
const MAX_EXPIRY_S = 24 * 60 * 60;

const lineItemSpec = obj({
  price_data: obj(
    {
      currency: str(),
      unit_amount: int(),
      unit_amount_decimal: str(),
      product_data: obj(
        {
          name: str(),
          description: str(40000),
          images: arrayOf(str(), 8),
          metadata: metadata(),
          unit_label: str(12),
          tax_code: unsupported,
          tax_details: unsupported,
        },
        ['name'],
      ),
      tax_behavior: oneOf(['exclusive', 'inclusive', 'unspecified']),
      ...unsupportedFields(['product', 'recurring']),
    },
    ['currency'],
  ),
  quantity: int(),
  ...unsupportedFields(['adjustable_quantity', 'dynamic_tax_rates', 'price', 'tax_rates']),
});

const createSpec = obj(
  {
    cancel_url: str(),
    client_reference_id: str(200),
    customer_email: str(),
    expand,
    expires_at: int(),
    line_items: arrayOf(lineItemSpec, 100),
    locale: str(),
    metadata: metadata(),
    mode: oneOf(['payment', 'setup', 'subscription']),
    payment_intent_data: obj({
      description: str(1000),
      metadata: metadata(),
      receipt_email: str(),
      statement_descriptor: str(22),
      statement_descriptor_suffix: str(22),
      ...unsupportedFields([
        'application_fee_amount',
        'capture_method',
        'on_behalf_of',
        'setup_future_usage',
        'shipping',
        'transfer_data',
        'transfer_group',
      ]),
    }),
    allowed_payment_method_types: arrayOf(str(), 50),
    payment_method_types: arrayOf(str(), 50),
    submit_type: oneOf(['auto', 'book', 'donate', 'pay']),
    success_url: str(),
    // API 2026-03-25.dahlia renamed hosted/embedded/custom; the old values are refused.
    ui_mode: oneOf(['elements', 'embedded_page', 'form', 'hosted_page']),
    ...unsupportedFields([
      'after_expiration',
      'allow_promotion_codes',
      'automatic_tax',
      'billing_address_collection',
      'consent_collection',
      'currency',
      'custom_fields',
      'custom_text',
      'customer',
      'customer_creation',
      'customer_update',
      'discounts',
      'invoice_creation',
      'payment_method_collection',
      'payment_method_configuration',
      'payment_method_data',
      'payment_method_options',
      'phone_number_collection',
      'redirect_on_completion',
      'return_url',
      'saved_payment_method_options',
      'setup_intent_data',
      'shipping_address_collection',
      'shipping_options',
      'subscription_data',
      'tax_id_collection',
    ]),
  },
  ['mode'],
);

function checkUrl(value: unknown, param: string): string {
  if (typeof value !== 'string')
    throw invalidRequest(`Missing required param: ${param}.`, param, 'parameter_missing');
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw invalidRequest('Not a valid URL', param, 'url_invalid');
  }
  return value;
}

interface ParsedLineItem {
  currency: string;
  unitAmount: number;
  quantity: number;
  name: string;
  description: string | null;
  taxBehavior: string;
  metadata: Record<string, string>;
}

function parseLineItems(raw: unknown): ParsedLineItem[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw invalidRequest('Missing required param: line_items.', 'line_items', 'parameter_missing');
  }
  return (raw as Params[]).map((item, i) => {
    const path = `line_items[${i}]`;
    const priceData = item['price_data'] as Params | undefined;
    if (!priceData) {
      throw invalidRequest(
        `Missing required param: ${path}[price_data].`,
        `${path}[price_data]`,
        'parameter_missing',
      );
    }
    const quantity = item['quantity'] as number | undefined;
    if (quantity === undefined) {
      throw invalidRequest(
        `Missing required param: ${path}[quantity].`,
        `${path}[quantity]`,
        'parameter_missing',
      );
    }
    if (quantity < 1 || quantity > 999_999) {
      throw invalidRequest(
        'Quantity must be between 1 and 999,999.',
        `${path}[quantity]`,
        'parameter_invalid_integer',
      );
    }
    const decimal = priceData['unit_amount_decimal'] as string | undefined;
    let unitAmount = priceData['unit_amount'] as number | undefined;
    if (unitAmount === undefined && decimal !== undefined) {
      if (!/^\d{1,12}$/.test(decimal)) {
        throw invalidRequest(
          'The Stripe sandbox only supports whole-number unit_amount_decimal values.',
          `${path}[price_data][unit_amount_decimal]`,
        );
      }
      unitAmount = Number(decimal);
    }
    if (unitAmount === undefined) {
      throw invalidRequest(
        `Missing required param: ${path}[price_data][unit_amount].`,
        `${path}[price_data][unit_amount]`,
        'parameter_missing',
      );
    }
    if (unitAmount < 0) {
      throw invalidRequest(
        'This value must be greater than or equal to 0.',
        `${path}[price_data][unit_amount]`,
        'parameter_invalid_integer',
      );
    }
    const product = priceData['product_data'] as Params | undefined;
    if (!product) {
      throw invalidRequest(
        `Missing required param: ${path}[price_data][product_data].`,
        `${path}[price_data][product_data]`,
        'parameter_missing',
      );
    }
    const currency = normalizeCurrency(priceData['currency'] as string, `${path}[price_data][currency]`);
    checkMinorUnitStep(unitAmount, currency, `${path}[price_data][unit_amount]`);
    return {
      currency,
      unitAmount,
      quantity,
      name: product['name'] as string,
      description: (product['description'] as string | undefined) ?? null,
      taxBehavior: (priceData['tax_behavior'] as string | undefined) ?? 'unspecified',
      metadata: initialMetadata(product['metadata']),
    };
  });
}

export function getSession(ctx: SandboxContext, id: string, param = 'session'): CheckoutSessionObject {
  const session = ctx.state.checkoutSessions.get(id);
  if (!session) throw resourceMissing('checkout.session', id, param);
  refreshExpiry(ctx, session);
  return session;
}

export function sessionExtras(ctx: SandboxContext, session: CheckoutSessionObject): SessionExtras {
  const extras = ctx.state.sessionExtras.get(session.id);
  if (!extras) throw new Error(`checkout session ${session.id} has no stored line items`);
  return extras;
}

function expireSession(ctx: SandboxContext, session: CheckoutSessionObject, request: EventRequestInfo): void {
  session.status = 'expired';
  session.url = null;
  // Stripe cancels the PaymentIntent of an abandoned attempt along with the session.
  const attempt = ctx.state.sessionExtras.get(session.id)?.attemptIntentId;
  const intent = attempt ? ctx.state.paymentIntents.get(attempt) : undefined;
  if (intent && intent.status !== 'succeeded' && intent.status !== 'canceled') {
    intent.status = 'canceled';
    intent.canceled_at = nowSeconds();
    intent.cancellation_reason = 'abandoned';
    ctx.events.emit('payment_intent.canceled', intent, request);
  }
  ctx.events.emit('checkout.session.expired', session, request);
}

/** Sessions past `expires_at` expire when next looked at, as if Stripe's sweeper had run. */
export function refreshExpiry(ctx: SandboxContext, session: CheckoutSessionObject): void {
  if (session.status === 'open' && nowSeconds() >= session.expires_at)
    expireSession(ctx, session, NO_REQUEST);
}

export function renderSession(
  ctx: SandboxContext,
  session: CheckoutSessionObject,
  fields: ReadonlySet<string>,
): unknown {
  if (fields.size === 0) return session;
  const out: Record<string, unknown> = { ...session };
  if (fields.has('payment_intent') && session.payment_intent) {
    const intent = ctx.state.paymentIntents.get(session.payment_intent);
    if (intent) out['payment_intent'] = renderPaymentIntent(ctx, intent, new Set());
  }
  if (fields.has('line_items')) {
    const items = sessionExtras(ctx, session).lineItems;
    out['line_items'] = {
      object: 'list',
      data: items.slice(0, 10),
      has_more: items.length > 10,
      url: `/v1/checkout/sessions/${session.id}/line_items`,
    };
  }
  return out;
}

function createSession(ctx: SandboxContext, params: Params): CheckoutSessionObject {
  if (params['mode'] !== 'payment') {
    throw invalidRequest("The Stripe sandbox only supports Checkout Sessions with mode 'payment'.", 'mode');
  }
  if (params['ui_mode'] !== undefined && params['ui_mode'] !== 'hosted_page') {
    throw invalidRequest("The Stripe sandbox only supports ui_mode 'hosted_page'.", 'ui_mode');
  }
  const items = parseLineItems(params['line_items']);
  const currency = items[0]?.currency ?? 'usd';
  items.forEach((item, i) => {
    if (item.currency !== currency) {
      throw invalidRequest(
        'All line items must use the same currency.',
        `line_items[${i}][price_data][currency]`,
      );
    }
  });
  const successUrl = checkUrl(params['success_url'], 'success_url');
  const cancelUrl = params['cancel_url'] === undefined ? null : checkUrl(params['cancel_url'], 'cancel_url');
  const email = params['customer_email'] as string | undefined;
  checkEmail(email, 'customer_email');
  checkEmail(
    (params['payment_intent_data'] as Params | undefined)?.['receipt_email'],
    'payment_intent_data[receipt_email]',
  );
  // Removed from Checkout Sessions in 2026-09-30.endive as from PaymentIntents
  // (docs.stripe.com/changelog/endive/2026-09-30/remove-payment-method-types-checkout-sessions).
  refusePaymentMethodTypes(params);
  allowedPaymentMethodTypes(params['allowed_payment_method_types']);
  const created = nowSeconds();
  const expiresAt = (params['expires_at'] as number | undefined) ?? created + MAX_EXPIRY_S;
  if (expiresAt < created + MIN_EXPIRY_S) {
    throw invalidRequest(
      'The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.',
      'expires_at',
    );
  }
  if (expiresAt > created + MAX_EXPIRY_S) {
    throw invalidRequest(
      'The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.',
      'expires_at',
    );
  }
  const total = items.reduce((sum, item) => sum + item.unitAmount * item.quantity, 0);
  checkChargeAmount(Math.min(total, maxAmount(currency) + 1), currency, 'line_items');

  const lineItems: LineItemObject[] = items.map((item) => {
    const amount = item.unitAmount * item.quantity;
    return {
      id: ctx.ids.id('li', 24),
      object: 'item',
      amount_discount: 0,
      amount_subtotal: amount,
      amount_tax: 0,
      amount_total: amount,
      currency,
      description: item.name,
      price: {
        id: ctx.ids.id('price', 24),
        object: 'price',
        active: false,
        billing_scheme: 'per_unit',
        created,
        currency,
        custom_unit_amount: null,
        livemode: false,
        lookup_key: null,
        metadata: {},
        nickname: null,
        product: ctx.ids.id('prod', 14),
        recurring: null,
        tax_behavior: item.taxBehavior,
        tiers_mode: null,
        transform_quantity: null,
        type: 'one_time',
        unit_amount: item.unitAmount,
        unit_amount_decimal: String(item.unitAmount),
      },
      quantity: item.quantity,
    };
  });
  const id = ctx.ids.id('cs_test', 58);
  const pid = (params['payment_intent_data'] as Params | undefined) ?? {};
  const session: CheckoutSessionObject = {
    id,
    object: 'checkout.session',
    after_expiration: null,
    allow_promotion_codes: null,
    amount_subtotal: total,
    amount_total: total,
    automatic_tax: { enabled: false, liability: null, status: null },
    billing_address_collection: null,
    cancel_url: cancelUrl,
    client_reference_id: (params['client_reference_id'] as string | undefined) ?? null,
    client_secret: null,
    consent: null,
    consent_collection: null,
    created,
    currency,
    currency_conversion: null,
    custom_fields: [],
    custom_text: {
      after_submit: null,
      shipping_address: null,
      submit: null,
      terms_of_service_acceptance: null,
    },
    customer: null,
    customer_creation: 'if_required',
    customer_details: null,
    customer_email: email ?? null,
    expires_at: expiresAt,
    invoice: null,
    invoice_creation: {
      enabled: false,
      invoice_data: {
        account_tax_ids: null,
        custom_fields: null,
        description: null,
        footer: null,
        issuer: null,
        metadata: {},
        rendering_options: null,
      },
    },
    livemode: false,
    locale: (params['locale'] as string | undefined) ?? null,
    metadata: initialMetadata(params['metadata']),
    mode: 'payment',
    payment_intent: null,
    payment_link: null,
    payment_method_collection: 'if_required',
    payment_method_configuration_details: null,
    payment_method_options: { card: { request_three_d_secure: 'automatic' } },
    payment_method_types: ['card'],
    payment_status: 'unpaid',
    phone_number_collection: { enabled: false },
    recovered_from: null,
    saved_payment_method_options: null,
    setup_intent: null,
    shipping_address_collection: null,
    shipping_cost: null,
    shipping_details: null,
    shipping_options: [],
    status: 'open',
    submit_type: (params['submit_type'] as string | undefined) ?? null,
    subscription: null,
    success_url: successUrl,
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted_page',
    url: `${ctx.baseUrl()}/checkout/${id}`,
  };
  ctx.state.checkoutSessions.add(session);
  ctx.state.sessionExtras.set(id, {
    lineItems,
    productDescriptions: items.map((item) => item.description),
    paymentIntentData: {
      metadata: initialMetadata(pid['metadata']),
      description: (pid['description'] as string | undefined) ?? null,
      receipt_email: (pid['receipt_email'] as string | undefined) ?? null,
      statement_descriptor: (pid['statement_descriptor'] as string | undefined) ?? null,
      statement_descriptor_suffix: (pid['statement_descriptor_suffix'] as string | undefined) ?? null,
    },
    attemptIntentId: null,
    lastRefusal: null,
  });
  return session;
}

/**
 * The customer pressed Pay on the hosted page. Success completes the session; a decline leaves it
 * open and throws the 402 card error (the failed attempt's PaymentIntent is reused next time).
 */
export function payCheckoutSession(
  ctx: SandboxContext,
  session: CheckoutSessionObject,
  email: string,
  paymentMethod: string,
): void {
  refreshExpiry(ctx, session);
  if (session.status !== 'open') throw invalidRequest(`This Checkout Session is ${session.status}.`);
  const extras = sessionExtras(ctx, session);
  const existing = extras.attemptIntentId ? ctx.state.paymentIntents.get(extras.attemptIntentId) : undefined;
  const data = extras.paymentIntentData;
  const intent =
    existing ??
    insertPaymentIntent(
      ctx,
      {
        amount: session.amount_total,
        currency: session.currency,
        metadata: { ...data.metadata },
        description: data.description,
        receipt_email: data.receipt_email,
        statement_descriptor: data.statement_descriptor,
        statement_descriptor_suffix: data.statement_descriptor_suffix,
        payment_method_types: ['card'],
        automatic_payment_methods: null,
        capture_method: 'automatic_async',
        confirmation_method: 'automatic',
      },
      null,
    );
  extras.attemptIntentId = intent.id;
  ctx.state.checkoutIntents.add(intent.id);
  // Named on the session from the confirmation that makes it (docs.stripe.com/changelog/2022-08-01/
  // deferred-paymentintent-checkout-session), before the charge: a declined attempt leaves the session open with
  // its intent (requires_payment_method, last_payment_error), and an expired session keeps naming the canceled one.
  session.payment_intent = intent.id;
  const { pm } = resolvePaymentMethod(ctx, paymentMethod, 'payment_method');
  pm.billing_details.email = email;
  // The customer is on the page: a card that asks for 3D Secure is authenticated there.
  chargeIntent(ctx, intent, pm.id, null, true);
  session.status = 'complete';
  session.payment_status = 'paid';
  session.url = null;
  session.customer_details = {
    address: null,
    email,
    name: null,
    phone: null,
    tax_exempt: 'none',
    tax_ids: [],
  };
  ctx.events.emit('checkout.session.completed', session, NO_REQUEST);
}

function listLineItems(session: CheckoutSessionObject, items: LineItemObject[], params: Params): unknown {
  const limit = resolveLimit(params['limit'] as number | undefined);
  const after = params['starting_after'] as string | undefined;
  const before = params['ending_before'] as string | undefined;
  const position = (id: string, param: string): number => {
    const i = items.findIndex((item) => item.id === id);
    if (i === -1) throw resourceMissing('line_item', id, param);
    return i;
  };
  // Line items keep the order they were given in, unlike time-ordered lists.
  let data: LineItemObject[];
  let hasMore: boolean;
  if (before !== undefined) {
    const end = position(before, 'ending_before');
    data = items.slice(Math.max(0, end - limit), end);
    hasMore = end - limit > 0;
  } else {
    const start = after === undefined ? 0 : position(after, 'starting_after') + 1;
    data = items.slice(start, start + limit);
    hasMore = start + limit < items.length;
  }
  return { object: 'list', data, has_more: hasMore, url: `/v1/checkout/sessions/${session.id}/line_items` };
}

export function checkoutSessionRoutes(ctx: SandboxContext): RouteDefinition[] {
  const render = (session: CheckoutSessionObject, params: Params) =>
    ok(renderSession(ctx, session, parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL)));
  return [
    {
      method: 'POST',
      path: '/v1/checkout/sessions',
      spec: createSpec,
      handler: (params) => {
        parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL);
        return render(createSession(ctx, params), params);
      },
    },
    {
      method: 'GET',
      path: '/v1/checkout/sessions',
      spec: obj({
        ...listParams,
        payment_intent: str(),
        status: oneOf(['complete', 'expired', 'open']),
        ...unsupportedFields(['customer', 'customer_details', 'payment_link', 'subscription']),
      }),
      handler: (params) => {
        const fields = parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL, true);
        const { checkoutSessions } = ctx.state;
        const intentId = params['payment_intent'] as string | undefined;
        const status = params['status'] as string | undefined;
        const page = paginate(
          checkoutSessions.view(),
          params as ListOptions,
          checkoutSessions.cursor('checkout.session'),
          (s) => {
            refreshExpiry(ctx, s);
            return (
              (intentId === undefined || s.payment_intent === intentId) &&
              (status === undefined || s.status === status)
            );
          },
        );
        return ok(listObject(page, (s) => renderSession(ctx, s, fields), '/v1/checkout/sessions'));
      },
    },
    {
      method: 'GET',
      path: '/v1/checkout/sessions/:session',
      spec: obj({ expand }),
      handler: (params, [id = '']) => render(getSession(ctx, id), params),
    },
    {
      method: 'POST',
      path: '/v1/checkout/sessions/:session/expire',
      spec: obj({ expand }),
      handler: (params, [id = ''], request: RequestInfo) => {
        const session = getSession(ctx, id);
        parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL);
        if (session.status !== 'open') {
          throw invalidRequest(
            `This Checkout Session is ${session.status} and can no longer be expired. Only Checkout Sessions with a ` +
              'status of `open` can be expired.',
            'session',
          );
        }
        expireSession(ctx, session, request);
        return render(session, params);
      },
    },
    {
      method: 'GET',
      path: '/v1/checkout/sessions/:session/line_items',
      spec: obj({ expand, limit: int(), starting_after: str(), ending_before: str() }),
      handler: (params, [id = '']) => {
        const session = getSession(ctx, id);
        parseExpand(params['expand'], [], [], true);
        return ok(listLineItems(session, sessionExtras(ctx, session).lineItems, params));
      },
    },
  ];
}
