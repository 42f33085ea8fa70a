import { createApiKeysRepo } from './api-keys-repo.js';
import type { ApiKeysRepo } from './api-keys-repo.js';
import { withErrorMapping } from './errors.js';
import { createIdempotencyRepo } from './idempotency-repo.js';
import type { IdempotencyRepo } from './idempotency-repo.js';
import { createInboxRepo } from './inbox-repo.js';
import type { InboxRepo } from './inbox-repo.js';
import { createOutboxRepo } from './outbox-repo.js';
import type { OutboxRepo } from './outbox-repo.js';
import { createPaymentsRepo } from './payments-repo.js';
import type { PaymentsRepo } from './payments-repo.js';
import { createRefundsRepo } from './refunds-repo.js';
import type { RefundsRepo } from './refunds-repo.js';
import type { RepoContext } from './repo-context.js';

/** The repositories, bound either to the store or to one transaction. */
export interface Repos {
  readonly payments: PaymentsRepo;
  readonly refunds: RefundsRepo;
  readonly outbox: OutboxRepo;
  readonly inbox: InboxRepo;
  readonly apiKeys: ApiKeysRepo;
  readonly idempotency: IdempotencyRepo;
}

/**
 * Each repository is built on first use: a transaction builds a fresh set bound to its connection, and
 * most touch two or three of the six (building all of them was ~15 µs of every transaction).
 */
export function createRepos(ctx: RepoContext): Repos {
  let payments: PaymentsRepo | undefined;
  let refunds: RefundsRepo | undefined;
  let outbox: OutboxRepo | undefined;
  let inbox: InboxRepo | undefined;
  let apiKeys: ApiKeysRepo | undefined;
  let idempotency: IdempotencyRepo | undefined;
  return Object.freeze({
    get payments() {
      return (payments ??= withErrorMapping(createPaymentsRepo(ctx)));
    },
    get refunds() {
      return (refunds ??= withErrorMapping(createRefundsRepo(ctx)));
    },
    get outbox() {
      return (outbox ??= withErrorMapping(createOutboxRepo(ctx)));
    },
    get inbox() {
      return (inbox ??= withErrorMapping(createInboxRepo(ctx)));
    },
    get apiKeys() {
      return (apiKeys ??= withErrorMapping(createApiKeysRepo(ctx)));
    },
    get idempotency() {
      return (idempotency ??= withErrorMapping(createIdempotencyRepo(ctx)));
    },
  });
}
