/** The redelivery storm (see support/ordering.ts) with the ledger on PostgreSQL (READ COMMITTED, a real pool). */
import { describe } from 'vitest';
import { postgresAvailable } from '../helpers/services.js';
import { orderingSuite } from './support/ordering.js';
import { rabbitReady } from './support/rig.js';

const rabbit = await rabbitReady('webhook ordering on PostgreSQL');
const postgres = await postgresAvailable();

describe.skipIf(!rabbit || !postgres)('webhook redelivery storm on PostgreSQL', () => {
  orderingSuite('postgres', { refunds: 200, copies: 3, senders: 8 });
});
