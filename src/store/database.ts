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
