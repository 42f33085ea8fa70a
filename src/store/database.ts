import type { ColumnType, Generated } from 'kysely';

/** SQLite stores ISO text; PostgreSQL uses timestamptz and hands back a Date. */
type Timestamp = ColumnType<string | Date, string, string>;
type NullableTimestamp = ColumnType<string | Date | null, string | null | undefined, string | null>;
/** JSON documents are stored as text on both dialects. */
type JsonText = string;

export interface PaymentsTable {
  id: string;
  kind: 'checkout_session' | 'payment_intent';
  owner: string;
  payment_intent_id: string | null;
  amount: number;
  currency: string;
  status: string;
  amount_refunded: ColumnType<number, number | undefined, number>;
  metadata: JsonText;
  customer_email: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface RefundsTable {
  request_id: string;
  owner: string;
  payment_intent_id: string;
  amount: number;
  currency: string | null;
  reason: string | null;
  status: string;
  stripe_refund_id: string | null;
  failure_reason: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  mode: 'sync' | 'async' | 'external';
  request_hash: string | null;
  metadata: JsonText;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** The X-Request-Id of the HTTP request that asked for the refund; null for one made elsewhere (migration 0010). */
  http_request_id: string | null;
}

export interface OutboxTable {
  id: Generated<number>;
  destination: string;
  routing_key: string;
  message_id: string;
  payload: JsonText;
  headers: JsonText | null;
  created_at: Timestamp;
  available_at: Timestamp;
  attempts: ColumnType<number, number | undefined, number>;
  sent_at: NullableTimestamp;
  last_error: string | null;
}

export interface WebhookEventsTable {
  event_id: string;
  type: string;
  object_id: string | null;
  payload: JsonText;
  received_at: Timestamp;
  processed_at: NullableTimestamp;
  attempts: ColumnType<number, number | undefined, number>;
  last_error: string | null;
  available_at: Timestamp;
}

export interface ApiKeysTable {
  id: string;
  owner: string;
  name: string;
  kind: 'secret' | 'publishable';
  prefix: string;
  hash: string;
  scopes: JsonText;
  created_at: Timestamp;
  revoked_at: NullableTimestamp;
  last_used_at: NullableTimestamp;
}

export interface IdempotencyKeysTable {
  owner: string;
  key: string;
  request_hash: string;
  state: 'in_progress' | 'done';
  response_status: number | null;
  response_body: JsonText | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  /**
   * What the claim in progress is known by, with created_at (migration 0010): random, written by each begin() that
   * claims the key. Null on a row a process of a version before 0010 claimed; such a process also leaves the token
   * of the claim it took over in place (it matches by created_at alone).
   */
  claim_token: string | null;
}

/** The typed schema Kysely checks every query against. */
export interface Database {
  payments: PaymentsTable;
  refunds: RefundsTable;
  outbox: OutboxTable;
  webhook_events: WebhookEventsTable;
  api_keys: ApiKeysTable;
  idempotency_keys: IdempotencyKeysTable;
}

/**
 * The list, checked complete at compile time: a column the table type has and `list` lacks is an error here.
 * Statements name their columns rather than `*`: on PostgreSQL each runs as a prepared statement per connection,
 * and one whose `*` grew a column (a later version's migration, during a rolling update) fails every run with
 * `cached plan must not change result type` until the connection closes.
 */
function everyColumnOf<T>() {
  return <const L extends readonly (keyof T & string)[]>(
    list: L &
      ([Exclude<keyof T, L[number]>] extends [never] ? unknown : { missing: Exclude<keyof T, L[number]> }),
  ): L => list;
}

export const PAYMENT_COLUMNS = everyColumnOf<PaymentsTable>()([
  'id',
  'kind',
  'owner',
  'payment_intent_id',
  'amount',
  'currency',
  'status',
  'amount_refunded',
  'metadata',
  'customer_email',
  'created_at',
  'updated_at',
]);

export const REFUND_COLUMNS = everyColumnOf<RefundsTable>()([
  'request_id',
  'owner',
  'payment_intent_id',
  'amount',
  'currency',
  'reason',
  'status',
  'stripe_refund_id',
  'failure_reason',
  'attempts',
  'mode',
  'request_hash',
  'metadata',
  'created_at',
  'updated_at',
  'http_request_id',
]);

/** The columns a new outbox message names (the rest have defaults). */
export const NEW_OUTBOX_COLUMNS = [
  'destination',
  'routing_key',
  'message_id',
  'payload',
  'headers',
  'created_at',
  'available_at',
] as const satisfies readonly (keyof OutboxTable)[];

export const OUTBOX_COLUMNS = everyColumnOf<OutboxTable>()([
  'id',
  ...NEW_OUTBOX_COLUMNS,
  'attempts',
  'sent_at',
  'last_error',
]);

export const WEBHOOK_EVENT_COLUMNS = everyColumnOf<WebhookEventsTable>()([
  'event_id',
  'type',
  'object_id',
  'payload',
  'received_at',
  'processed_at',
  'attempts',
  'last_error',
  'available_at',
]);

export const API_KEY_COLUMNS = everyColumnOf<ApiKeysTable>()([
  'id',
  'owner',
  'name',
  'kind',
  'prefix',
  'hash',
  'scopes',
  'created_at',
  'revoked_at',
  'last_used_at',
]);

/** `columns`, each as `alias.column`: for a select from an aliased table or a common table expression. */
export function qualified<A extends string, const L extends readonly string[]>(
  alias: A,
  columns: L,
): { readonly [K in keyof L]: `${A}.${L[K]}` } {
  return columns.map((c) => `${alias}.${c}`) as unknown as { readonly [K in keyof L]: `${A}.${L[K]}` };
}
