export { createStore } from './store.js';
export type { Store, StoreOptions } from './store.js';
export type { Repos } from './repos.js';
export { DEFAULT_DATABASE_URL, parseDatabaseUrl, redactDatabaseUrl } from './database-url.js';
export type { DatabaseTarget } from './database-url.js';
export {
  DuplicateKeyError,
  LedgerSchemaError,
  NoLedgerError,
  StoreError,
  StoreUnavailableError,
  failureLevel,
} from './errors.js';
export type { Dialect } from './migrations.js';
export type { TimeInput } from './codec.js';
export type { Database } from './database.js';
export {
  OPEN_REFUND_STATUSES,
  REFUND_STATUSES,
  REFUND_STATUS_RANK,
  RELEASED_REFUND_STATUSES,
  canAdvanceRefund,
  isRefundStatus,
  isTerminalRefundStatus,
} from './refund-status.js';
export type { RefundStatus } from './refund-status.js';
export type { NewPayment, Payment, PaymentKind, PaymentPatch, PaymentsRepo } from './payments-repo.js';
export type { NewRefund, Refund, RefundFields, RefundMode, RefundsRepo } from './refunds-repo.js';
export { DEFAULT_CLAIM_LEASE_MS, outboxErrorText } from './outbox-repo.js';
export type { HeldLease, NewOutboxMessage, OutboxMessage, OutboxRepo } from './outbox-repo.js';
export type { InboxEvent, InboxRepo, NewInboxEvent } from './inbox-repo.js';
export type { ApiKey, ApiKeyKind, ApiKeyPatch, ApiKeysRepo, NewApiKey } from './api-keys-repo.js';
export type { IdempotencyBegin, IdempotencyRepo } from './idempotency-repo.js';
export { IN_PROGRESS_STALE_MS } from './idempotency-repo.js';
