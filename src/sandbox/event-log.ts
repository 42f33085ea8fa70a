import { Collection, paginate, type ListOptions } from './collection.js';
import type { IdFactory } from './ids.js';
import { resourceMissing } from './stripe-error.js';
import type { WebhookDispatcher } from './webhook-dispatcher.js';

export interface EventRequestInfo {
  id: string | null;
  idempotency_key: string | null;
}

export const NO_REQUEST: EventRequestInfo = Object.freeze({ id: null, idempotency_key: null });

interface EventRecord {
  id: string;
  type: string;
  created: number;
  /** The object snapshot, serialised once: events are immutable and most are only ever sent. */
  objectJson: string;
  previousJson: string | undefined;
  request: EventRequestInfo;
  pending: number;
}

export interface EventLogOptions {
  ids: IdFactory;
  apiVersion: string;
  maxEvents: number;
  dispatcher: WebhookDispatcher;
}

export interface EventListOptions extends ListOptions {
  types?: string[];
  delivery_success?: boolean;
}

/** Records every state change as a Stripe Event and hands it to the webhook dispatcher. */
export class EventLog {
  private readonly events: Collection<EventRecord>;

  constructor(private readonly options: EventLogOptions) {
    this.events = new Collection<EventRecord>(options.maxEvents);
  }

  emit(type: string, object: unknown, request: EventRequestInfo, previous?: Record<string, unknown>): string {
    const endpoints = this.options.dispatcher.endpointsFor(type);
    const record: EventRecord = {
      id: this.options.ids.id('evt', 24),
      type,
      created: Math.floor(Date.now() / 1000),
      objectJson: JSON.stringify(object),
      previousJson: previous === undefined ? undefined : JSON.stringify(previous),
      request,
      pending: endpoints.length,
    };
    this.events.add(record);
    if (endpoints.length > 0) this.options.dispatcher.enqueue(record.id, this.render(record), endpoints);
    return record.id;
  }

  /** A delivery reached a 2xx: the event has one fewer pending webhook. */
  markDelivered(eventId: string): void {
    const record = this.events.get(eventId);
    if (record && record.pending > 0) record.pending--;
  }

  private render(r: EventRecord): string {
    const previous = r.previousJson === undefined ? '' : `,"previous_attributes":${r.previousJson}`;
    return (
      `{"id":${JSON.stringify(r.id)},"object":"event","api_version":${JSON.stringify(this.options.apiVersion)},` +
      `"created":${r.created},"data":{"object":${r.objectJson}${previous}},"livemode":false,` +
      `"pending_webhooks":${r.pending},"request":${JSON.stringify(r.request)},"type":${JSON.stringify(r.type)}}`
    );
  }

  retrieve(id: string): string {
    const record = this.events.get(id);
    if (!record) throw resourceMissing('event', id, 'id');
    return this.render(record);
  }

  list(options: EventListOptions): string {
    // Stripe's `type` filter accepts `*` as a wildcard, e.g. `charge.*`.
    const exact = new Set(options.types?.filter((t) => !t.includes('*')));
    const prefixes =
      options.types?.filter((t) => t.includes('*')).map((t) => t.slice(0, t.indexOf('*'))) ?? [];
    const typeMatches = (type: string): boolean =>
      options.types === undefined || exact.has(type) || prefixes.some((p) => type.startsWith(p));
    const page = paginate(
      this.events.view(),
      options,
      this.events.cursor('event'),
      (e) =>
        typeMatches(e.type) &&
        (options.delivery_success === undefined || options.delivery_success === (e.pending === 0)),
    );
    return `{"object":"list","data":[${page.data.map((e) => this.render(e)).join(',')}],"has_more":${page.has_more},"url":"/v1/events"}`;
  }

  get size(): number {
    return this.events.size;
  }

  clear(): void {
    this.events.clear();
  }
}
