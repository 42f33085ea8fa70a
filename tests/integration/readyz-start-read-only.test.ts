/**
 * A service started against a PostgreSQL that refuses writes (a hot standby, or default_transaction_read_only set
 * for the server, database or role) fails at its first write (here: provisioning API_KEYS), and its "could not
 * start" line said the database refuses writes, then advised that PostgreSQL "must be running and reachable" with
 * its user and database existing: all true already. The advice now points at what fixes it: the primary, or the
 * setting.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { explainStartFailure } from '../../src/config/start-failure.js';
import { startService } from '../../src/service.js';
import { captureLogger } from '../helpers/log-capture.js';
import { startSharedStripe, type SharedStripe } from '../helpers/service.js';
import { POSTGRES_URL, pgAdmin, postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('starting on a PostgreSQL that refuses writes', () => {
  const role = `start_ro_${randomBytes(4).toString('hex')}`;
  const password = `pw${randomBytes(6).toString('hex')}`;
  let stripe: SharedStripe;

  function configFor(extra: Record<string, string> = {}, user = role) {
    const url = new URL(POSTGRES_URL);
    url.username = user;
    url.password = password; // the shared PostgreSQL trusts every connection: carried, never checked
    return loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      DATABASE_URL: url.toString(),
      ...stripe.env,
      ...extra,
    });
  }

  const fresh = `${role}_new`;

  /** Starts a service with `config`, expects the start to fail, and answers its "could not start" line. */
  async function startFailureLine(config: ReturnType<typeof configFor>): Promise<string> {
    const err = await startService(config, captureLogger('debug').logger).then(
      async (svc) => {
        await svc.close();
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).not.toBeNull();
    return explainStartFailure(err, { port: config.port, host: config.host, database: config.database });
  }

  beforeAll(async () => {
    stripe = await startSharedStripe();
    // The role's own schema, first on its default search_path ("$user").
    await pgAdmin([`create role ${role} login`, `create schema ${role} authorization ${role}`]);
    // And one with no ledger yet, read-only from the start.
    await pgAdmin([
      `create role ${fresh} login`,
      `create schema ${fresh} authorization ${fresh}`,
      `alter role ${fresh} set default_transaction_read_only = on`,
    ]);
    // Its ledger made while the role could write (a primary), as a standby's copy of it would be.
    const svc = await startService(configFor(), captureLogger('debug').logger);
    await svc.close();
    await pgAdmin([`alter role ${role} set default_transaction_read_only = on`]);
  }, 30_000);
  afterAll(async () => {
    await stripe?.close();
    await pgAdmin([
      `drop schema if exists ${role} cascade`,
      `drop schema if exists ${fresh} cascade`,
      `select pg_terminate_backend(pid) from pg_stat_activity where usename in ('${role}', '${fresh}')`,
      `drop role if exists ${role}`,
      `drop role if exists ${fresh}`,
    ]);
  });

  it('fails to start, advising to point DATABASE_URL at the primary or turn the setting off', async () => {
    // Provisioning a key is a write at start.
    const config = configFor({ API_KEYS: `shop|refunds:read|psk_${randomBytes(16).toString('hex')}` });
    const line = await startFailureLine(config);
    expect(line).toMatch(/^the database refuses writes \(read-only\)/);
    expect(line).not.toMatch(/must be running and reachable/);
    expect(line).toMatch(/primary/);
    expect(line).toMatch(/default_transaction_read_only/);
    expect(line).toContain(`postgres://${role}:***@`);
    expect(line).not.toContain(password);
  }, 30_000);

  it('with no ledger yet, says the database refuses writes (the first migration is the refused write)', async () => {
    const config = configFor({}, fresh);
    const line = await startFailureLine(config);
    expect(line).toMatch(/^the database refuses writes \(read-only\)/);
    expect(line).toMatch(/default_transaction_read_only/);
  }, 30_000);
});
