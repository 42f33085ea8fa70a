/**
 * The developer's `trigger`: builds a Stripe event, signs it with the SDK exactly as Stripe would, and
 * posts it to a running service. With a Stripe key configured it embeds the real object (then applies
 * the overrides), so a refund can be walked through its states without waiting for Stripe.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import Stripe from 'stripe';
import { createStripeClient, type StripeClient } from '../stripe/client.js';
import { dropClientSecrets } from './client-secrets.js';
import { signingSecretOf } from './signing-secrets.js';

export interface TriggerOptions {
  type: string;
  url: string;
  secret: string;
  eventId?: string;
  refund?: string;
  paymentIntent?: string;
  session?: string;
  charge?: string;
  status?: string;
  amount?: number;
  currency?: string;
  /** Do not read the object from Stripe even when a key is configured. */
  offline: boolean;
  /** Print the event instead of sending it. */
  dryRun: boolean;
}

export interface TriggerIo {
  out(line: string): void;
  err(line: string): void;
}

/**
 * The event types the trigger builds an object for (the service applies each), with the status it gives the
 * object unless --status says otherwise (null: none, a charge's status is left as it is). --help lists exactly
 * these; any other type is sent as is.
 */
const EVENT_STATUS: ReadonlyMap<string, string | null> = new Map([
  ['refund.created', 'succeeded'],
  ['refund.updated', 'succeeded'],
  ['refund.failed', 'failed'],
  ['charge.refund.updated', 'succeeded'],
  ['charge.refunded', null],
  ['payment_intent.succeeded', 'succeeded'],
  ['payment_intent.payment_failed', 'requires_payment_method'],
  ['payment_intent.canceled', 'canceled'],
  ['payment_intent.processing', 'processing'],
  ['payment_intent.requires_action', 'requires_action'],
  ['checkout.session.completed', 'complete'],
  ['checkout.session.async_payment_succeeded', 'complete'],
  ['checkout.session.async_payment_failed', 'complete'],
  ['checkout.session.expired', 'expired'],
]);

export const TRIGGER_EVENT_TYPES: readonly string[] = [...EVENT_STATUS.keys()];

/** `words` joined by ", ", wrapped before `width` columns, lines after the first indented by two spaces. */
function wrapList(first: string, words: readonly string[], width: number): string {
  const lines = [first];
  words.forEach((word, i) => {
    const item = i < words.length - 1 ? `${word},` : word;
    const line = lines[lines.length - 1]!;
    if (line.length + 1 + item.length > width && line.trim() !== '') lines.push(`  ${item}`);
    else lines[lines.length - 1] = `${line} ${item}`;
  });
  return lines.join('\n');
}

export const USAGE = `Usage: npm run webhook -- <event-type> [options]

Sends a signed test event to a running service, like \`stripe trigger\`.

${wrapList('Event types:', [...TRIGGER_EVENT_TYPES, 'or any other type (sent as is).'], 100)}

Options:
  --refund <re_...>           refund the event is about
  --payment-intent <pi_...>   payment intent (or the refund's payment intent)
  --session <cs_...>          checkout session
  --charge <ch_...>           charge (charge.refunded)
  --status <status>           override the object's status, e.g. --status succeeded
  --amount <n> --currency <c> override amount (minor units) and currency
  --id <evt_...>              event id (default: a new one; repeat it to test de-duplication)
  --url <url>                 default http://127.0.0.1:$PORT/webhook (PORT default 5000)
  --secret <whsec_...>        default $STRIPE_WEBHOOK_SECRET (from the environment or .env; of a list, the first)
  --offline                   do not read the object from Stripe even if STRIPE_SECRET_KEY is set
  --dry-run                   print the event (client secrets left out), send nothing
  -h, --help

With STRIPE_SECRET_KEY (and optionally STRIPE_API_BASE) set, the real object is read and embedded
before the overrides are applied.

A made-up refund failure does not change the ledger: the service reads a refund event saying failed or
canceled from Stripe before applying it, so refund.failed (or --status failed/canceled) about a refund
Stripe made leaves it as Stripe has it, and one about a refund Stripe does not know changes nothing. Other
statuses are applied as sent to a refund the service knows (--status succeeded moves a real pending refund on
before Stripe does); a refund it does not know yet, or another amount or currency than it has, is read from
Stripe first, so a made-up refund or currency changes nothing.
To see a refund fail, refund a payment made with pm_card_refundFail.

Set the same STRIPE_WEBHOOK_SECRET for the service and this command: an embedded-mode service otherwise
makes up a random one at start.`;

export class UsageError extends Error {}

type Kind = 'refund' | 'payment_intent' | 'checkout_session' | 'charge' | 'other';

export function kindOf(type: string): Kind {
  if (type.startsWith('refund.') || type === 'charge.refund.updated') return 'refund';
  if (type.startsWith('payment_intent.')) return 'payment_intent';
  if (type.startsWith('checkout.session.')) return 'checkout_session';
  if (type.startsWith('charge.')) return 'charge';
  return 'other';
}

function randomId(prefix: string): string {
  return `${prefix}_trigger${randomBytes(10).toString('hex')}`;
}

/** Parses argv (without node and the script); throws UsageError on a mistake, returns null for --help. */
export function parseTriggerArgs(
  argv: string[],
  env: Record<string, string | undefined>,
): TriggerOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        secret: { type: 'string' },
        id: { type: 'string' },
        refund: { type: 'string' },
        'payment-intent': { type: 'string' },
        session: { type: 'string' },
        charge: { type: 'string' },
        status: { type: 'string' },
        amount: { type: 'string' },
        currency: { type: 'string' },
        offline: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return null;
  if (positionals.length !== 1) throw new UsageError('Give exactly one event type, e.g. refund.updated.');
  const type = positionals[0]!;
  if (!/^[a-z_]+(\.[a-z_]+)+$/.test(type))
    throw new UsageError(`${type} does not look like a Stripe event type.`);
  // STRIPE_WEBHOOK_SECRET lists several while one is being rolled: sign with the first, as the embedded sandbox does.
  const secret = signingSecretOf(values.secret ?? env['STRIPE_WEBHOOK_SECRET'] ?? '');
  if (!secret) {
    throw new UsageError(
      'No signing secret: pass --secret whsec_... or set STRIPE_WEBHOOK_SECRET (the same value the service uses).',
    );
  }
  let amount: number | undefined;
  if (values.amount !== undefined) {
    amount = Number(values.amount);
    if (!Number.isInteger(amount) || amount < 0)
      throw new UsageError('--amount must be a whole number of minor units.');
  }
  const url = values.url ?? `http://127.0.0.1:${env['PORT'] || '5000'}/webhook`;
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url ${url} is not a URL.`);
  }
  return {
    type,
    url,
    secret,
    ...(values.id !== undefined && { eventId: values.id }),
    ...(values.refund !== undefined && { refund: values.refund }),
    ...(values['payment-intent'] !== undefined && { paymentIntent: values['payment-intent'] }),
    ...(values.session !== undefined && { session: values.session }),
    ...(values.charge !== undefined && { charge: values.charge }),
    ...(values.status !== undefined && { status: values.status }),
    ...(amount !== undefined && { amount }),
    ...(values.currency !== undefined && { currency: values.currency.toLowerCase() }),
    offline: values.offline,
    dryRun: values['dry-run'],
  };
}

/** An object of the event's kind with the fields the service reads, for when Stripe is not asked. */
function synthesize(o: TriggerOptions, kind: Kind): Record<string, unknown> {
  const created = Math.floor(Date.now() / 1000);
  const amount = o.amount ?? 1000;
  const currency = o.currency ?? 'usd';
  switch (kind) {
    case 'refund':
      return {
        id: o.refund ?? randomId('re'),
        object: 'refund',
        amount,
        charge: o.charge ?? null,
        created,
        currency,
        metadata: {},
        payment_intent: o.paymentIntent ?? null,
        reason: null,
        status: 'succeeded',
      };
    case 'payment_intent':
      return {
        id: o.paymentIntent ?? randomId('pi'),
        object: 'payment_intent',
        amount,
        amount_received: 0,
        created,
        currency,
        metadata: {},
        status: 'requires_payment_method',
      };
    case 'checkout_session':
      return {
        id: o.session ?? randomId('cs_test'),
        object: 'checkout.session',
        amount_total: amount,
        created,
        currency,
        metadata: {},
        mode: 'payment',
        payment_intent: o.paymentIntent ?? null,
        payment_status: 'unpaid',
        status: 'open',
      };
    case 'charge':
      return {
        id: o.charge ?? randomId('ch'),
        object: 'charge',
        amount,
        amount_refunded: 0,
        created,
        currency,
        metadata: {},
        payment_intent: o.paymentIntent ?? null,
        refunded: false,
        status: 'succeeded',
      };
    default:
      return {
        id: o.refund ?? o.paymentIntent ?? o.session ?? o.charge ?? randomId('obj'),
        object: o.type.split('.')[0],
        created,
      };
  }
}

async function fetchReal(
  stripe: StripeClient,
  o: TriggerOptions,
  kind: Kind,
): Promise<Record<string, unknown> | null> {
  const asRecord = (v: unknown) => v as Record<string, unknown>;
  if (kind === 'refund' && o.refund) return asRecord(await stripe.refunds.retrieve(o.refund));
  if (kind === 'payment_intent' && o.paymentIntent)
    return asRecord(await stripe.paymentIntents.retrieve(o.paymentIntent));
  if (kind === 'checkout_session' && o.session)
    return asRecord(await stripe.checkout.sessions.retrieve(o.session));
  if (kind === 'charge') {
    if (o.charge) return asRecord(await stripe.charges.retrieve(o.charge));
    if (o.paymentIntent) {
      const pi = await stripe.paymentIntents.retrieve(o.paymentIntent);
      const charge = typeof pi.latest_charge === 'string' ? pi.latest_charge : pi.latest_charge?.id;
      if (charge) return asRecord(await stripe.charges.retrieve(charge));
    }
  }
  return null;
}

/** The overrides the event type and flags ask for; `previous` holds what they replaced (for *.updated). */
function applyOverrides(
  object: Record<string, unknown>,
  o: TriggerOptions,
  kind: Kind,
): { object: Record<string, unknown>; previous: Record<string, unknown> } {
  const out = { ...object };
  const previous: Record<string, unknown> = {};
  const set = (key: string, value: unknown) => {
    if (out[key] === value) return;
    previous[key] = out[key] ?? null;
    out[key] = value;
  };
  const status = o.status ?? EVENT_STATUS.get(o.type) ?? undefined;
  if (status !== undefined && kind !== 'charge') set('status', status);
  if (o.amount !== undefined) set(kind === 'checkout_session' ? 'amount_total' : 'amount', o.amount);
  if (o.currency !== undefined) set('currency', o.currency);
  if (
    o.paymentIntent !== undefined &&
    (kind === 'refund' || kind === 'charge' || kind === 'checkout_session')
  )
    set('payment_intent', o.paymentIntent);
  if (kind === 'refund' && out['status'] === 'failed' && !out['failure_reason'])
    set('failure_reason', 'expired_or_canceled_card');
  if (kind === 'checkout_session') {
    const paid =
      o.type === 'checkout.session.completed' || o.type === 'checkout.session.async_payment_succeeded';
    if (o.type !== 'checkout.session.async_payment_failed' && (paid || o.type === 'checkout.session.expired'))
      set('payment_status', paid ? 'paid' : 'unpaid');
  }
  if (kind === 'charge' && o.type === 'charge.refunded') {
    set('refunded', true);
    const amount = typeof out['amount'] === 'number' ? out['amount'] : 0;
    if (typeof out['amount_refunded'] !== 'number' || out['amount_refunded'] === 0)
      set('amount_refunded', amount);
  }
  return { object: out, previous };
}

export interface BuiltEvent {
  event: Record<string, unknown>;
  payload: string;
  /** Where the embedded object came from. */
  source: 'stripe' | 'synthesized';
}

export async function buildTriggerEvent(
  o: TriggerOptions,
  env: Record<string, string | undefined>,
  io: TriggerIo,
): Promise<BuiltEvent> {
  const kind = kindOf(o.type);
  let base: Record<string, unknown> | null = null;
  const key = env['STRIPE_SECRET_KEY'];
  if (key && !o.offline) {
    const apiBase = env['STRIPE_API_BASE'] ? new URL(env['STRIPE_API_BASE']) : null;
    const stripe = createStripeClient(
      { secretKey: key, apiBase, timeoutMs: 10_000, maxNetworkRetries: 1 },
      pino({ level: 'silent' }),
    );
    try {
      base = await fetchReal(stripe, o, kind);
    } catch (err) {
      io.err(`! could not read the object from Stripe (${(err as Error).message}); sending a made-up one`);
    }
  }
  const source = base ? 'stripe' : 'synthesized';
  const { object, previous } = applyOverrides(base ?? synthesize(o, kind), o, kind);
  const event: Record<string, unknown> = {
    id: o.eventId ?? `evt_trigger${randomBytes(12).toString('hex')}`,
    object: 'event',
    api_version: Stripe.API_VERSION,
    created: Math.floor(Date.now() / 1000),
    data: {
      object,
      ...(o.type.endsWith('.updated') && Object.keys(previous).length > 0
        ? { previous_attributes: previous }
        : {}),
    },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: o.type,
  };
  return { event, payload: JSON.stringify(event, null, 2), source };
}

/** Runs the command; resolves to the process exit code (0 on a 2xx answer). */
export async function runWebhookTrigger(
  argv: string[],
  env: Record<string, string | undefined>,
  io: TriggerIo,
): Promise<number> {
  let o: TriggerOptions | null;
  try {
    o = parseTriggerArgs(argv, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`error: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (!o) {
    io.out(USAGE);
    return 0;
  }
  const { event, payload, source } = await buildTriggerEvent(o, env, io);
  const object = (event['data'] as { object: { id: string } }).object;
  if (o.dryRun) {
    // A payment intent read from Stripe carries its client secret, which may confirm the payment; a terminal
    // (and its scroll-back, a pasted issue) is no place for it. The service drops it on receipt anyway.
    io.out(JSON.stringify(dropClientSecrets(structuredClone(event)), null, 2));
    return 0;
  }
  // The official SDK signs, so the service sees exactly what Stripe would send.
  const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: o.secret });
  io.out(`→ POST ${o.url}  ${o.type} ${String(event['id'])} (${object.id}, ${source} object)`);
  let res: Response;
  try {
    res = await fetch(o.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature },
      body: payload,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    io.err(`✗ could not reach ${o.url}: ${cause ?? (err as Error).message}`);
    return 1;
  }
  const text = await res.text();
  io.out(`← ${res.status} ${res.statusText}`);
  if (text) io.out(text);
  if (res.status === 400 && /"code":"signature_invalid"/.test(text)) {
    // The usual cause: a service started without STRIPE_WEBHOOK_SECRET, which in embedded mode makes up its own.
    io.err(
      '! the service checks signatures with another secret: start it with the same STRIPE_WEBHOOK_SECRET as this command',
    );
  }
  return res.ok ? 0 : 1;
}
