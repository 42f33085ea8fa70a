/**
 * The pieces of the webhook path that need no services: signature verification against signatures
 * made by the official SDK, the retry schedule, and the limiter that bounds concurrent processing.
 */
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { ProblemError } from '../../src/http/problem.js';
import { retryDelayMs } from '../../src/webhooks/service.js';
import { createTaskLimiter } from '../../src/webhooks/task-limiter.js';
import {
  jsonNestedDeeperThan,
  MAX_EVENT_DEPTH,
  SIGNATURE_TOLERANCE_SECONDS,
  verifyStripeEvent,
} from '../../src/webhooks/verify.js';

const SECRET = 'whsec_unitTestSecret0123456789abcdef';
const T = 1_767_139_200;
const body = JSON.stringify({
  id: 'evt_1',
  object: 'event',
  type: 'refund.updated',
  data: { object: { id: 're_1' } },
});
const sign = (payload: string, timestamp = T, secret = SECRET) =>
  Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });

function rejection(fn: () => unknown): {
  status: number;
  code: string | undefined;
  detail: string | undefined;
} {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProblemError);
    const p = err as ProblemError;
    return { status: p.status, code: p.extras.code, detail: p.detail };
  }
  throw new Error('expected a rejection');
}

describe('verifyStripeEvent', () => {
  const at = (seconds: number) => ({ nowMs: seconds * 1000 });

  it('returns the event for a signature the SDK made over the exact bytes', () => {
    const event = verifyStripeEvent(Buffer.from(body), sign(body), [SECRET], at(T));
    expect(event).toMatchObject({ id: 'evt_1', type: 'refund.updated' });
  });

  it('uses Stripe’s 300 s tolerance: 300 s old passes, 301 s old is refused as expired', () => {
    expect(SIGNATURE_TOLERANCE_SECONDS).toBe(300);
    expect(verifyStripeEvent(Buffer.from(body), sign(body), [SECRET], at(T + 300)).id).toBe('evt_1');
    expect(
      rejection(() => verifyStripeEvent(Buffer.from(body), sign(body), [SECRET], at(T + 301))),
    ).toMatchObject({
      status: 400,
      code: 'signature_expired',
    });
  });

  it('keeps the tolerance ahead too: 300 s ahead passes, 301 s ahead is refused as expired', () => {
    // Stripe's tolerance is the difference from the current time either way (its PHP and .NET libraries check both);
    // the Node SDK checks only the past.
    expect(verifyStripeEvent(Buffer.from(body), sign(body, T + 300), [SECRET], at(T)).id).toBe('evt_1');
    for (const ahead of [301, 3600]) {
      expect(
        rejection(() => verifyStripeEvent(Buffer.from(body), sign(body, T + ahead), [SECRET], at(T))),
      ).toMatchObject({ status: 400, code: 'signature_expired' });
    }
  });

  it('accepts a header carrying several v1 signatures when one matches (secret rotation)', () => {
    const other = sign(body, T, 'whsec_previousSecret00000000000000').split('v1=')[1];
    const header = `${sign(body)},v1=${other}`;
    expect(verifyStripeEvent(Buffer.from(body), header, [SECRET], at(T)).id).toBe('evt_1');
  });

  it.each([
    ['missing header', undefined, body, 'signature_missing'],
    ['empty header', '', body, 'signature_missing'],
    ['two headers', [sign(body), sign(body)], body, 'signature_invalid'],
    ['no timestamp', `v1=${sign(body).split('v1=')[1]}`, body, 'signature_invalid'],
    ['wrong secret', sign(body, T, 'whsec_other000000000000000000000000'), body, 'signature_invalid'],
    ['changed body', sign(body), body.replace('re_1', 're_2'), 'signature_invalid'],
    ['empty body', sign(''), '', 'body_missing'],
    ['signed non-JSON', sign('{"id":'), '{"id":', 'event_invalid'],
    ['signed array', sign('[1,2]'), '[1,2]', 'event_invalid'],
    [
      'signed event without data.object',
      sign('{"id":"evt_1","type":"x.y","data":{}}'),
      '{"id":"evt_1","type":"x.y","data":{}}',
      'event_invalid',
    ],
    [
      'signed thin (v2) event',
      sign('{"id":"evt_1","object":"v2.core.event","type":"x.y","data":{"object":{}}}'),
      '{"id":"evt_1","object":"v2.core.event","type":"x.y","data":{"object":{}}}',
      'event_invalid',
    ],
  ] as const)('%s → 400 %s', (_name, header, payload, code) => {
    const r = rejection(() =>
      verifyStripeEvent(Buffer.from(payload), header as string | string[] | undefined, [SECRET], at(T)),
    );
    expect(r).toMatchObject({ status: 400, code });
  });

  describe('on the bytes received, not the text they decode to', () => {
    // The SDK decodes the body as UTF-8 and checks the signature over that text: a byte order mark is dropped and
    // each invalid byte read as U+FFFD, so bodies Stripe never signed passed for the one it did.
    const withReplacement = JSON.stringify({
      id: 'evt_1',
      object: 'event',
      type: 'refund.updated',
      data: { object: { id: 're_1', description: 'caf\uFFFD' } },
    });

    it('a byte order mark put before a signed body → 400 signature_invalid', () => {
      const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]);
      expect(rejection(() => verifyStripeEvent(bytes, sign(body), [SECRET], at(T)))).toEqual({
        status: 400,
        code: 'signature_invalid',
        detail: 'The Stripe-Signature header does not match the body.',
      });
    });

    it('an invalid UTF-8 byte in place of a signed U+FFFD → 400 signature_invalid', () => {
      const signed = Buffer.from(withReplacement);
      expect(verifyStripeEvent(signed, sign(withReplacement), [SECRET], at(T)).id).toBe('evt_1');
      const at3 = signed.indexOf(Buffer.from('\uFFFD'));
      const bytes = Buffer.concat([signed.subarray(0, at3), Buffer.from([0xff]), signed.subarray(at3 + 3)]);
      expect(rejection(() => verifyStripeEvent(bytes, sign(withReplacement), [SECRET], at(T))).code).toBe(
        'signature_invalid',
      );
    });
  });

  describe('with several secrets (while one is being rolled)', () => {
    const OLD = 'whsec_previousSecret00000000000000';
    const both = [OLD, SECRET];

    it('accepts an event signed with any of them, the first or the second', () => {
      expect(verifyStripeEvent(Buffer.from(body), sign(body, T, OLD), both, at(T)).id).toBe('evt_1');
      expect(verifyStripeEvent(Buffer.from(body), sign(body, T, SECRET), both, at(T)).id).toBe('evt_1');
    });

    it('refuses one signed with neither as signature_invalid', () => {
      const header = sign(body, T, 'whsec_other000000000000000000000000');
      expect(rejection(() => verifyStripeEvent(Buffer.from(body), header, both, at(T)))).toEqual({
        status: 400,
        code: 'signature_invalid',
        detail: 'The Stripe-Signature header does not match the body.',
      });
    });

    it('keeps the tolerance for the second secret: 301 s old is signature_expired, not signature_invalid', () => {
      const header = sign(body, T, SECRET);
      expect(verifyStripeEvent(Buffer.from(body), header, both, at(T + 300)).id).toBe('evt_1');
      expect(rejection(() => verifyStripeEvent(Buffer.from(body), header, both, at(T + 301)))).toMatchObject({
        status: 400,
        code: 'signature_expired',
      });
    });

    it('a correctly signed body that is not JSON is event_invalid, whichever secret signed it', () => {
      for (const secret of both) {
        expect(
          rejection(() => verifyStripeEvent(Buffer.from('{"id":'), sign('{"id":', T, secret), both, at(T)))
            .code,
        ).toBe('event_invalid');
      }
    });
  });

  it('an empty v1 signature (a header the SDK cannot read) is signature_invalid, not a server error', () => {
    for (const header of [`t=${T},v1=`, 't=,v1=']) {
      expect(rejection(() => verifyStripeEvent(Buffer.from(body), header, [SECRET], at(T)))).toMatchObject({
        status: 400,
        code: 'signature_invalid',
      });
    }
  });

  it('never puts the signature in what it says', () => {
    const header = sign(body, T, 'whsec_other000000000000000000000000');
    const r = rejection(() => verifyStripeEvent(Buffer.from(body), header, [SECRET], at(T)));
    expect(r.detail).not.toContain(header.split('v1=')[1]);
  });
});

describe('deeply nested signed events', () => {
  const at = { nowMs: T * 1000 };
  /** A signed event whose whole body nests `depth` levels (the event itself is level 1). */
  const eventNested = (depth: number) => {
    const inner = depth - 3; // event, data, object
    const deep = '{"a":'.repeat(inner) + '1' + '}'.repeat(inner);
    return `{"id":"evt_deep","object":"event","type":"refund.updated","data":{"object":{"id":"re_1","x":${deep}}}}`;
  };

  it(`an event nested ${MAX_EVENT_DEPTH} levels is accepted, one level more is refused as event_invalid`, () => {
    const ok = eventNested(MAX_EVENT_DEPTH);
    expect(verifyStripeEvent(Buffer.from(ok), sign(ok), [SECRET], at).id).toBe('evt_deep');
    const deeper = eventNested(MAX_EVENT_DEPTH + 1);
    expect(rejection(() => verifyStripeEvent(Buffer.from(deeper), sign(deeper), [SECRET], at))).toMatchObject(
      {
        status: 400,
        code: 'event_invalid',
      },
    );
  });

  it('an event nested 100,000 levels is refused as event_invalid, not handed on to overflow the stack', () => {
    const payload = eventNested(100_000);
    // What storing it did: JSON.stringify recurses and overflows the stack.
    expect(() => JSON.stringify(JSON.parse(payload))).toThrow(RangeError);
    const r = rejection(() => verifyStripeEvent(Buffer.from(payload), sign(payload), [SECRET], at));
    expect(r).toMatchObject({ status: 400, code: 'event_invalid' });
    expect(r.detail).toContain(String(MAX_EVENT_DEPTH));
  });

  it('an unsigned deep body is still a signature failure: the signature is checked first', () => {
    const payload = eventNested(100_000);
    const header = sign(payload, T, 'whsec_other000000000000000000000000');
    expect(rejection(() => verifyStripeEvent(Buffer.from(payload), header, [SECRET], at)).code).toBe(
      'signature_invalid',
    );
  });

  it('counts brackets, not the ones inside strings or escaped quotes', () => {
    const deeper = (json: string, max: number) => {
      JSON.parse(json); // every case is valid JSON, as a verified body is
      return jsonNestedDeeperThan(Buffer.from(json), max);
    };
    expect(deeper('[[[]]]', 3)).toBe(false);
    expect(deeper('[[[[]]]]', 3)).toBe(true);
    expect(deeper('{"a":[1,{"b":2}],"c":{}}', 3)).toBe(false);
    expect(deeper('{"a":"[[[[{{{{"}', 1)).toBe(false);
    expect(deeper(String.raw`{"a":"\\"}`, 1)).toBe(false);
    expect(deeper(String.raw`{"a\\":"x\\\"[[[","b":{}}`, 1)).toBe(true);
    expect(deeper(String.raw`{"a\\":"x\\\"[[["}`, 1)).toBe(false);
    expect(deeper('{"é":"ü[","b":[{}]}', 2)).toBe(true);
    expect(deeper(`[${Array(10_000).fill('[]').join(',')}]`, 2)).toBe(false);
  });
});

describe('retry schedule', () => {
  it('doubles from 1 s and stops growing at 15 min', () => {
    expect([0, 1, 2, 3].map(retryDelayMs)).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelayMs(10)).toBe(15 * 60_000);
    expect(retryDelayMs(1000)).toBe(15 * 60_000);
  });
});

describe('task limiter', () => {
  it('runs at most n at once, in arrival order, and idle() waits for all of them', async () => {
    const limiter = createTaskLimiter(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const releases: (() => void)[] = [];
    const tasks = [0, 1, 2, 3, 4].map((i) =>
      limiter.run(async () => {
        running++;
        peak = Math.max(peak, running);
        order.push(i);
        await new Promise<void>((resolve) => releases.push(resolve));
        running--;
        return i;
      }),
    );
    let idle = false;
    const idlePromise = limiter.idle().then(() => (idle = true));
    // Finish them one at a time; each finish lets exactly one waiting task start.
    for (let finished = 0; finished < 5; finished++) {
      while (releases.length === 0) await new Promise((r) => setTimeout(r, 1));
      expect(running).toBeLessThanOrEqual(2);
      expect(idle).toBe(false);
      releases.shift()!();
    }
    expect(await Promise.all(tasks)).toEqual([0, 1, 2, 3, 4]);
    await idlePromise;
    expect(idle).toBe(true);
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('a failing task rejects its own promise and frees its slot', async () => {
    const limiter = createTaskLimiter(1);
    await expect(limiter.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limiter.run(async () => 'next')).resolves.toBe('next');
    await limiter.idle();
    expect(limiter.active).toBe(0);
  });
});
