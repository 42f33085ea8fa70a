/** The redelivery storm (see support/ordering.ts) with the ledger on SQLite. */
import { describe } from 'vitest';
import { orderingSuite } from './support/ordering.js';
import { rabbitReady } from './support/rig.js';

const rabbit = await rabbitReady('webhook ordering on SQLite');

describe.skipIf(!rabbit)('webhook redelivery storm on SQLite', () => {
  orderingSuite('sqlite', { refunds: 200, copies: 3, senders: 8 });
});
