/**
 * Thin events (`object: "v2.core.event"`), which an event destination set to the thin payload sends: no `data`, only
 * the event's id, type and the object it names. The ledger learns nothing from them. They were answered
 * `400 event_invalid`, which Stripe retries for days; a verified one is now acknowledged (200), nothing stored,
 * published or applied, with one warning naming its type. An unverified one is refused as any other body.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { databases, rabbitReady, useRig } from './support/rig.js';

const rabbit = await rabbitReady('thin events');
const dbs = await databases();

/** Thin events as Stripe documents them (docs.stripe.com/api/v2/core/events/event-types). */
const thinEvents = () => [
  {
    id: `evt_test_${randomBytes(12).toString('hex')}`,
    object: 'v2.core.event',
    type: 'v1.billing.meter.error_report_triggered',
    livemode: false,
    created: new Date().toISOString(),
    related_object: {
      id: 'mtr_test_61R9Ijk8d5lMWkW0y41IKRbHOWiqZYAe',
      type: 'billing.meter',
      url: '/v1/billing/meters/mtr_test_61R9Ijk8d5lMWkW0y41IKRbHOWiqZYAe',
    },
  },
  {
    id: `evt_test_${randomBytes(12).toString('hex')}`,
    object: 'v2.core.event',
    type: 'v2.core.event_destination.ping',
    livemode: false,
    created: new Date().toISOString(),
    context: null,
    related_object: {
      id: 'ed_test_61R9IjkkXyz',
      type: 'v2.core.event_destination',
      url: '/v2/core/event_destinations/ed_test_61R9IjkkXyz',
    },
  },
];

describe.skipIf(!rabbit).each(dbs)('thin events, on %s', (db) => {
  const rig = useRig(db, `thin.${db}`);

  it('a verified thin event is acknowledged (200), nothing stored, published or applied, one warning', async () => {
    for (const thin of thinEvents()) {
      const before = await rig.counts();
      const res = await rig.send(JSON.stringify(thin));
      expect({ status: res.status, body: await res.json() }).toEqual({
        status: 200,
        body: { success: true },
      });
      await rig.settled();
      expect(await rig.counts()).toEqual(before);
      const warned = rig.svc.lines.filter((l) => l.includes(thin.id));
      expect(warned).toHaveLength(1);
      expect(JSON.parse(warned[0]!)).toMatchObject({ level: 40, type: thin.type, eventId: thin.id });
      // Counted, so that a destination sending thin events by mistake shows on a dashboard.
      const metrics = await (await fetch(`${rig.svc.url}/metrics`)).text();
      const counted = metrics
        .split('\n')
        .find((l) => l.startsWith('payments_webhook_events_total{') && l.includes(`type="${thin.type}"`));
      expect(counted).toMatch(/outcome="ignored"\} 1$/);
    }
  });

  it('a thin event signed with another secret is refused as any other body (400 signature_invalid)', async () => {
    const [thin] = thinEvents();
    const before = await rig.counts();
    const res = await rig.send(JSON.stringify(thin), { secret: `whsec_${randomBytes(24).toString('hex')}` });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'signature_invalid' });
    expect(await rig.counts()).toEqual(before);
    expect(rig.svc.lines.some((l) => l.includes(thin!.id))).toBe(false);
  });

  it('a signed body naming v2.core.event without an id or type is still not an event (400 event_invalid)', async () => {
    const res = await rig.send(
      JSON.stringify({ object: 'v2.core.event', type: 'v2.core.event_destination.ping' }),
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'event_invalid' });
  });
});
