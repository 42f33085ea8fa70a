import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';

export interface WebhookEndpointConfig {
  url: string;
  secret: string;
  /** Event types to send; `'*'` (the default) means all. */
  enabledEvents?: string[];
}

export interface WebhookRetryOptions {
  /** Total delivery attempts per event and endpoint, the first one included. */
  attempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export interface WebhookEndpoint {
  readonly url: URL;
  readonly secret: string;
  readonly allEvents: boolean;
  readonly events: ReadonlySet<string>;
}

export interface DispatcherOptions {
  logger: Logger;
  retry: Required<WebhookRetryOptions>;
  concurrency: number;
  timeoutMs: number;
  /** Deliveries waiting beyond this are dropped, oldest first, so a dead receiver cannot exhaust memory. */
  maxQueue: number;
}

export interface WebhookStats {
  endpoints: number;
  queued: number;
  inFlight: number;
  retryScheduled: number;
  delivered: number;
  failedAttempts: number;
  abandoned: number;
  dropped: number;
}

interface Delivery {
  eventId: string;
  body: string;
  endpoint: WebhookEndpoint;
  /** 1-based number of the attempt about to be made. */
  attempt: number;
}

/** Builds the `Stripe-Signature` header value Stripe's SDKs verify. */
export function signPayload(body: string, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${signature}`;
}

/**
 * The URL as given, without the password of its user part: a URL refused here is quoted in the CLI's stderr, and
 * may be one a URL parser cannot take apart (a "/" in the password), so the user part is found by hand.
 */
function withoutPassword(raw: string): string {
  return raw.replace(/^([^:/?#]*:\/\/[^:/?#@]*):[^@]*@/, '$1:***@');
}

export function parseEndpoint(config: WebhookEndpointConfig): WebhookEndpoint {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new TypeError(`Invalid webhook endpoint URL: ${withoutPassword(String(config.url))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`Webhook endpoint URL must be http or https: ${withoutPassword(String(config.url))}`);
  }
  if (typeof config.secret !== 'string' || config.secret.trim() === '') {
    throw new TypeError('Webhook endpoint secret must be a non-empty string');
  }
  const enabled = config.enabledEvents ?? ['*'];
  if (!Array.isArray(enabled) || enabled.some((e) => typeof e !== 'string' || e === '')) {
    throw new TypeError('Webhook endpoint enabledEvents must be a list of event types');
  }
  return { url, secret: config.secret, allEvents: enabled.includes('*'), events: new Set(enabled) };
}

/**
 * Sends signed events to the registered endpoints, off the request path: a FIFO queue drained by
 * at most `concurrency` HTTP requests, with exponential backoff for non-2xx answers and network errors.
 */
export class WebhookDispatcher {
  private endpoints: WebhookEndpoint[] = [];
  private queue: (Delivery | undefined)[] = [];
  private head = 0;
  private active = 0;
  private readonly inFlight = new Set<http.ClientRequest>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private pumpHandle: NodeJS.Immediate | undefined;
  private closed = false;
  /** Bumped by reset(): deliveries started before it must not schedule retries afterwards. */
  private generation = 0;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private counters = { delivered: 0, failedAttempts: 0, abandoned: 0, dropped: 0 };
  /** Told when an event reached an endpoint, so the event's `pending_webhooks` can go down. */
  onDelivered: (eventId: string) => void = () => {};

  constructor(private readonly options: DispatcherOptions) {
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: options.concurrency });
  }

  addEndpoint(config: WebhookEndpointConfig): void {
    this.endpoints = [...this.endpoints, parseEndpoint(config)];
  }

  endpointsFor(type: string): WebhookEndpoint[] {
    if (this.closed) return [];
    return this.endpoints.filter((e) => e.allEvents || e.events.has(type));
  }

  enqueue(eventId: string, body: string, endpoints: readonly WebhookEndpoint[]): void {
    if (this.closed) return;
    for (const endpoint of endpoints) this.push({ eventId, body, endpoint, attempt: 1 });
    this.schedulePump();
  }

  stats(): WebhookStats {
    return {
      endpoints: this.endpoints.length,
      queued: this.queue.length - this.head,
      inFlight: this.active,
      retryScheduled: this.retryTimers.size,
      ...this.counters,
    };
  }

  /** Forgets queued deliveries and pending retries; endpoints stay registered. */
  reset(): void {
    this.generation++;
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    for (const req of this.inFlight) req.destroy();
    this.inFlight.clear();
    this.queue = [];
    this.head = 0;
    this.counters = { delivered: 0, failedAttempts: 0, abandoned: 0, dropped: 0 };
  }

  close(): void {
    this.closed = true;
    if (this.pumpHandle) clearImmediate(this.pumpHandle);
    this.reset();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private push(delivery: Delivery): void {
    this.queue.push(delivery);
    if (this.queue.length - this.head > this.options.maxQueue) {
      this.queue[this.head++] = undefined;
      this.counters.dropped++;
    }
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private schedulePump(): void {
    if (this.pumpHandle || this.closed) return;
    this.pumpHandle = setImmediate(() => {
      this.pumpHandle = undefined;
      this.pump();
    });
  }

  private pump(): void {
    while (!this.closed && this.active < this.options.concurrency && this.head < this.queue.length) {
      const delivery = this.queue[this.head];
      this.queue[this.head++] = undefined;
      if (delivery) this.deliver(delivery);
    }
  }

  private deliver(delivery: Delivery): void {
    const { endpoint, body } = delivery;
    const isHttps = endpoint.url.protocol === 'https:';
    const generation = this.generation;
    this.active++;
    let settled = false;
    const settle = (ok: boolean, reason: string): void => {
      if (settled) return;
      settled = true;
      this.active--;
      this.inFlight.delete(req);
      if (this.closed || generation !== this.generation) return;
      if (ok) {
        this.counters.delivered++;
        this.onDelivered(delivery.eventId);
      } else {
        this.counters.failedAttempts++;
        this.retry(delivery, reason);
      }
      this.pump();
    };
    const req = (isHttps ? https : http).request(endpoint.url, {
      method: 'POST',
      agent: isHttps ? this.httpsAgent : this.httpAgent,
      timeout: this.options.timeoutMs,
      headers: {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        'Stripe-Signature': signPayload(body, endpoint.secret),
        'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
        Accept: '*/*; q=0.5, application/xml',
        'Cache-Control': 'no-cache',
      },
    });
    this.inFlight.add(req);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      // Drain so the keep-alive socket can be reused; the verdict only needs the status.
      res.resume();
      res.on('error', () => {});
      settle(status >= 200 && status < 300, `HTTP ${status}`);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${this.options.timeoutMs} ms`)));
    req.on('error', (err) => settle(false, err.message));
    req.end(body);
  }

  private retry(delivery: Delivery, reason: string): void {
    const { attempts, initialDelayMs, maxDelayMs } = this.options.retry;
    const log = {
      eventId: delivery.eventId,
      url: delivery.endpoint.url.href,
      attempt: delivery.attempt,
      reason,
    };
    if (delivery.attempt >= attempts) {
      this.counters.abandoned++;
      this.options.logger.warn(log, 'webhook delivery failed; giving up');
      return;
    }
    const delay = Math.min(initialDelayMs * 2 ** (delivery.attempt - 1), maxDelayMs);
    this.options.logger.debug({ ...log, retryInMs: delay }, 'webhook delivery failed; will retry');
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (this.closed) return;
      this.push({ ...delivery, attempt: delivery.attempt + 1 });
      this.pump();
    }, delay);
    this.retryTimers.add(timer);
  }
}
