import { createApiKeysRepo } from './api-keys-repo.js';
import type { ApiKeysRepo } from './api-keys-repo.js';
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

/**
 * The repositories, bound either to the store or to one transaction. A unique violation reaches their
 * callers as DuplicateKeyError: both drivers map it where the statement runs.
 */
export interface Repos {
  readonly payments: PaymentsRepo;
  readonly refunds: RefundsRepo;
  readonly outbox: OutboxRepo;
  readonly inbox: InboxRepo;
  readonly apiKeys: ApiKeysRepo;
  readonly idempotency: IdempotencyRepo;
}

export function createRepos(ctx: RepoContext): Repos {
  return Object.freeze({
    payments: createPaymentsRepo(ctx),
    refunds: createRefundsRepo(ctx),
    outbox: createOutboxRepo(ctx),
    inbox: createInboxRepo(ctx),
    apiKeys: createApiKeysRepo(ctx),
    idempotency: createIdempotencyRepo(ctx),
  });
}
