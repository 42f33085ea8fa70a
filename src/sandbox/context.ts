import type { Logger } from 'pino';
import { Collection } from './collection.js';
import type { EventLog, EventRequestInfo } from './event-log.js';
import type { IdFactory } from './ids.js';
import type { Params } from './param-spec.js';
import type { TestCard } from './test-cards.js';
import type {
  ChargeObject,
  CheckoutSessionObject,
  LineItemObject,
  PaymentIntentObject,
  PaymentMethodObject,
  RefundObject,
} from './wire-types.js';

/** What the hosted page needs about a session that is not part of the wire object. */
export interface SessionExtras {
  lineItems: LineItemObject[];
  productDescriptions: (string | null)[];
  paymentIntentData: {
    metadata: Record<string, string>;
    description: string | null;
    receipt_email: string | null;
    statement_descriptor: string | null;
    statement_descriptor_suffix: string | null;
  };
  /** The PaymentIntent of an earlier, declined attempt; reused for the next one. */
  attemptIntentId: string | null;
  /**
   * The hosted page's latest refused Pay (a declined card, an invalid email), shown by the GET its POST redirects
   * to (`?attempt=<number>`); `number` counts the refusals of the session.
   */
  lastRefusal: PageRefusal | null;
}

/** A Pay the hosted page refused, as the page shows it again. */
export interface PageRefusal {
  number: number;
  status: number;
  error: string;
  email?: string;
  selected?: string;
}

/**
 * Every object the sandbox has made. With `maxObjects` each kind keeps only its newest that many (the
 * oldest answer 404 like an unknown id), and what indexes them goes with them: a long-running embedded
 * service must not grow with every payment it has ever seen.
 */
export class SandboxState {
  /** The test card behind each PaymentMethod and charge: it decides declines and refund outcomes. */
  readonly cardOf = new Map<string, TestCard>();
  readonly chargesByIntent = new Map<string, ChargeObject[]>();
  readonly refundsByCharge = new Map<string, RefundObject[]>();
  readonly refundsByIntent = new Map<string, RefundObject[]>();
  readonly sessionExtras = new Map<string, SessionExtras>();
  /** PaymentIntents a Checkout Session made: only its hosted page confirms them. */
  readonly checkoutIntents = new Set<string>();
  readonly paymentIntents: Collection<PaymentIntentObject>;
  readonly charges: Collection<ChargeObject>;
  readonly refunds: Collection<RefundObject>;
  readonly checkoutSessions: Collection<CheckoutSessionObject>;
  readonly paymentMethods: Collection<PaymentMethodObject>;

  constructor(maxObjects = Number.POSITIVE_INFINITY) {
    this.paymentIntents = new Collection(maxObjects, (gone) => {
      for (const pi of gone) {
        this.chargesByIntent.delete(pi.id);
        this.refundsByIntent.delete(pi.id);
        this.checkoutIntents.delete(pi.id);
      }
    });
    this.charges = new Collection(maxObjects, (gone) => {
      for (const charge of gone) {
        this.refundsByCharge.delete(charge.id);
        this.cardOf.delete(charge.id);
      }
    });
    this.refunds = new Collection(maxObjects);
    this.checkoutSessions = new Collection(maxObjects, (gone) => {
      for (const session of gone) this.sessionExtras.delete(session.id);
    });
    this.paymentMethods = new Collection(maxObjects, (gone) => {
      for (const pm of gone) this.cardOf.delete(pm.id);
    });
  }

  clear(): void {
    this.paymentIntents.clear();
    this.charges.clear();
    this.refunds.clear();
    this.checkoutSessions.clear();
    this.paymentMethods.clear();
    this.cardOf.clear();
    this.chargesByIntent.clear();
    this.refundsByCharge.clear();
    this.refundsByIntent.clear();
    this.sessionExtras.clear();
    this.checkoutIntents.clear();
  }
}

/** Timers that move pending refunds forward; cancelled on reset and close. */
export class RefundTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  schedule(refundId: string, delayMs: number, fire: () => void): void {
    this.cancel(refundId);
    const timer = setTimeout(() => {
      this.timers.delete(refundId);
      fire();
    }, delayMs);
    this.timers.set(refundId, timer);
  }

  cancel(refundId: string): void {
    const timer = this.timers.get(refundId);
    if (timer) clearTimeout(timer);
    this.timers.delete(refundId);
  }

  get size(): number {
    return this.timers.size;
  }

  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

export interface SandboxContext {
  state: SandboxState;
  events: EventLog;
  ids: IdFactory;
  refundTimers: RefundTimers;
  logger: Logger;
  refundSettleDelayMs: number;
  /** The account's one payment method configuration, shown on intents that use automatic payment methods. */
  paymentMethodConfigurationId: string;
  /** Base URL of the running sandbox, for hosted checkout URLs. */
  baseUrl(): string;
}

export interface RequestInfo extends EventRequestInfo {
  id: string;
}

export interface RouteResult {
  status: number;
  json: string;
}

export type RouteHandler = (params: Params, pathParams: string[], request: RequestInfo) => RouteResult;

export const ok = (body: unknown): RouteResult => ({ status: 200, json: JSON.stringify(body) });

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Appends to a per-key list in a secondary index. */
export function indexPush<T>(index: Map<string, T[]>, key: string, value: T): void {
  const list = index.get(key);
  if (list) list.push(value);
  else index.set(key, [value]);
}
