/**
 * `npm run webhook -- --help` names the event types the trigger builds an object for: it omitted some
 * (payment_intent.processing, the checkout session's async payment events), so a developer reading it did not
 * know the trigger sends them. Run as a developer runs it; no service is needed for --help.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHARGE_REFUNDED_EVENT_TYPE,
  CHECKOUT_SESSION_EVENT_TYPES,
  PAYMENT_INTENT_EVENT_TYPES,
  REFUND_EVENT_TYPES,
} from '../../src/webhooks/apply.js';
import { TRIGGER_EVENT_TYPES } from '../../src/webhooks/trigger.js';
import { runScript, type ScriptRun } from '../helpers/processes.js';

let cwd: string;
beforeAll(() => {
  // A directory of its own, so a developer's .env in the checkout cannot leak in.
  cwd = mkdtempSync(path.join(tmpdir(), 'webhook-help-'));
});
afterAll(() => {
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

function help(): Promise<ScriptRun> {
  return runScript('scripts/webhook-trigger.ts', ['--help'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: cwd },
  });
}

/** The event types the "Event types:" paragraph of --help names. */
function listedIn(usage: string): string[] {
  const paragraph = usage.split('Event types:')[1]?.split('\n\n')[0] ?? '';
  return [...paragraph.matchAll(/\b[a-z_]+(?:\.[a-z_]+)+\b/g)].map((m) => m[0]);
}

describe('npm run webhook -- --help', () => {
  let listed: string[];
  beforeAll(async () => {
    const res = await help();
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    listed = listedIn(res.stdout);
  });

  it('names every event type the service applies', () => {
    const applied = [
      ...REFUND_EVENT_TYPES,
      CHARGE_REFUNDED_EVENT_TYPE,
      ...PAYMENT_INTENT_EVENT_TYPES,
      ...CHECKOUT_SESSION_EVENT_TYPES,
    ];
    for (const type of applied) expect(listed, type).toContain(type);
  });

  it('names exactly the event types the trigger builds an object for, each once', () => {
    expect(TRIGGER_EVENT_TYPES.length).toBeGreaterThan(0);
    expect([...listed].sort()).toEqual([...TRIGGER_EVENT_TYPES].sort());
  });
});
