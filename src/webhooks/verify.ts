/**
 * Signature check for Stripe webhooks, on the exact bytes received. Everything that fails here is a
 * 400 and must happen before anything is written: an unverified body is never stored or processed.
 */
import { isUtf8 } from 'node:buffer';
import Stripe from 'stripe';
import { ProblemError } from '../http/problem.js';

/** Stripe's own default: a signature older than this is treated as a replay. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/**
 * In UTF-8 bytes. Longer ids are not Stripe's; refusing them keeps junk out of the inbox's primary key. The id and
 * type are also the message id and routing key of the event's stripe.events message, AMQP short strings of at most
 * 255 bytes: a longer one could never be published.
 */
const MAX_EVENT_ID_BYTES = 255;
const MAX_EVENT_TYPE_BYTES = 255;
/**
 * Stripe's object ids have at most 255 characters too. The inbox indexes the object id, and PostgreSQL refuses an
 * index entry over 2,704 bytes: a longer one answered 500, which Stripe retries for days.
 */
export const MAX_STRIPE_ID_LENGTH = 255;

/**
 * Stripe's events nest a dozen levels or so (event, data, object, an expanded list, its items...). A body
 * nested thousands deep still parses (V8's JSON.parse does not recurse), but JSON.stringify does, so storing
 * it threw a RangeError and the webhook answered 500, which Stripe retries for days; a shallower one was
 * stored and published to consumers whose parsers may recurse (Python's stops at ~1,000).
 */
export const MAX_EVENT_DEPTH = 64;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether valid JSON nests objects and arrays deeper than `max`, counted on the bytes without recursion.
 * Outside strings only brackets open and close; in UTF-8 no byte of a multi-byte character is ASCII.
 */
export function jsonNestedDeeperThan(json: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const b = json[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return false;
}

/**
 * Whether `bytes` are exactly the UTF-8 encoding of the text they decode to: valid UTF-8 with no byte order mark.
 * The SDK checks the signature over that text (it decodes the body with TextDecoder, which drops a leading BOM and
 * reads each invalid byte as U+FFFD), not over the bytes; for any other body the bytes Stripe signed are not the
 * ones received, though the text matches: a BOM put before a genuine delivery, or an invalid byte put where it has
 * a U+FFFD, passed. Stripe sends valid UTF-8 without a BOM.
 */
function isCanonicalUtf8(bytes: Buffer): boolean {
  const bom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  return !bom && isUtf8(bytes);
}

export type WebhookRejection =
  'signature_missing' | 'signature_invalid' | 'signature_expired' | 'body_missing' | 'event_invalid';

export interface VerifyOptions {
  /** Seconds; default SIGNATURE_TOLERANCE_SECONDS. */
  toleranceSeconds?: number;
  /** Clock for the tolerance check, in ms (tests). */
  nowMs?: number;
}

function reject(detail: string, code: WebhookRejection): ProblemError {
  return new ProblemError(400, detail, { code });
}

/** Stripe's ids and event types never hold control characters (PostgreSQL cannot even store NUL in text). */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** What a verified body must look like before the service stores it under its id. */
function assertEventShape(value: unknown): asserts value is Stripe.Event {
  const e = value as Partial<Stripe.Event> | null;
  const objectId = (e?.data?.object as { id?: unknown } | null | undefined)?.id;
  const valid =
    typeof e === 'object' &&
    e !== null &&
    !Array.isArray(e) &&
    typeof e.id === 'string' &&
    e.id.length > 0 &&
    Buffer.byteLength(e.id) <= MAX_EVENT_ID_BYTES &&
    typeof e.type === 'string' &&
    e.type.length > 0 &&
    Buffer.byteLength(e.type) <= MAX_EVENT_TYPE_BYTES &&
    typeof e.data === 'object' &&
    e.data !== null &&
    typeof e.data.object === 'object' &&
    e.data.object !== null &&
    !hasControlCharacter(e.id) &&
    !hasControlCharacter(e.type) &&
    !(
      typeof objectId === 'string' &&
      (objectId.length > MAX_STRIPE_ID_LENGTH || hasControlCharacter(objectId))
    );
  if (!valid) {
    throw reject(
      'The signed body is not a Stripe event (id, type and data.object are required; ids have at most 255 characters).',
      'event_invalid',
    );
  }
}

/** The header's timestamp (`t=`), read as the SDK reads it: the last `t=` item, in seconds. */
function signedAt(header: string): number {
  let t = Number.NaN;
  for (const item of header.split(',')) {
    const [key, value] = item.split('=');
    if (key === 't') t = Number.parseInt(value ?? '', 10);
  }
  return t;
}

/**
 * A thin event (`object: "v2.core.event"`), as an event destination with the thin payload sends it: no snapshot,
 * only the event's id, type and the object it names (`related_object`), to be read from Stripe's v2 events API.
 * Stripe signs it like any other event.
 */
export interface ThinEvent {
  id: string;
  type: string;
  object: string;
}

/** What a verified body is: a (snapshot) event the ledger stores and applies, or a thin event it does not use. */
export type VerifiedDelivery =
  { event: Stripe.Event; thin?: undefined } | { thin: ThinEvent; event?: undefined };

const THIN_EVENT_OBJECT = 'v2.core.event';

/** A thin event, named by its `object`, with an id and type that could be stored (see assertEventShape). */
function thinEventOf(value: unknown): ThinEvent | null {
  const e = value as { id?: unknown; type?: unknown; object?: unknown } | null;
  if (typeof e !== 'object' || e === null || Array.isArray(e) || e.object !== THIN_EVENT_OBJECT) return null;
  const { id, type } = e;
  const valid =
    typeof id === 'string' &&
    id.length > 0 &&
    Buffer.byteLength(id) <= MAX_EVENT_ID_BYTES &&
    !hasControlCharacter(id) &&
    typeof type === 'string' &&
    type.length > 0 &&
    Buffer.byteLength(type) <= MAX_EVENT_TYPE_BYTES &&
    !hasControlCharacter(type);
  return valid ? { id, type, object: THIN_EVENT_OBJECT } : null;
}

/**
 * verifyStripeDelivery for a caller that takes snapshot events only: a thin event is refused as `event_invalid`.
 */
export function verifyStripeEvent(
  rawBody: Buffer,
  signature: string | string[] | undefined,
  secrets: readonly string[],
  opts: VerifyOptions = {},
): Stripe.Event {
  const delivery = verifyStripeDelivery(rawBody, signature, secrets, opts);
  if (delivery.thin) {
    throw reject(
      `The signed body is a thin event (${THIN_EVENT_OBJECT}), not a snapshot event.`,
      'event_invalid',
    );
  }
  return delivery.event;
}

/**
 * Verifies `Stripe-Signature` over `rawBody` with the SDK and returns the parsed event, or the thin event it is. `secrets`: every secret
 * the endpoint may be signed with (two while one is being rolled); the event is accepted when one of the
 * header's v1 signatures matches one of them. Throws a 400 ProblemError that says why (missing, malformed,
 * wrong, outside the tolerance) but never echoes the signature.
 */
export function verifyStripeDelivery(
  rawBody: Buffer,
  signature: string | string[] | undefined,
  secrets: readonly string[],
  opts: VerifyOptions = {},
): VerifiedDelivery {
  if (secrets.length === 0) throw new Error('verifyStripeDelivery needs at least one secret');
  if (signature === undefined || signature === '') {
    throw reject('The Stripe-Signature header is missing.', 'signature_missing');
  }
  if (Array.isArray(signature)) {
    throw reject('Exactly one Stripe-Signature header is expected.', 'signature_invalid');
  }
  if (rawBody.length === 0) throw reject('The webhook body is empty.', 'body_missing');

  const tolerance = opts.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS;
  let event: unknown;
  let verified = false;
  let stale = false;
  // The SDK compares each of the header's v1 signatures with the secret's in constant time. A secret it refuses
  // leaves the next one to try. It checks the timestamp only once a signature matched, and the header has one
  // timestamp, so a stale answer from one secret would be the answer of every other. Only the signature
  // (verifyHeader, what constructEvent checks before it parses): constructEvent throws for a thin event's body
  // (`object: "v2.core.event"`), which Stripe signs the same way.
  const check = Stripe.webhooks.signature;
  if (!check) throw new Error("the Stripe SDK's webhook signature helper is missing");
  for (const secret of secrets) {
    try {
      check.verifyHeader(rawBody, signature, secret, tolerance, undefined, opts.nowMs);
      verified = true;
      break;
    } catch (err) {
      // Another error is the SDK's on a header it cannot read (`v1=` empty: "secureCompare must receive two
      // arguments"): no signature of this secret matched, as for any other bad header (it was a 500).
      if (!(err instanceof Stripe.errors.StripeSignatureVerificationError)) continue;
      stale = /tolerance/i.test(err.message);
      if (stale) break;
    }
  }
  // Checked once a signature matched, so that a body signed with no secret of ours is refused the usual way; the
  // answer is the same: the signature does not match the bytes received.
  if (verified && !isCanonicalUtf8(rawBody)) verified = false;
  // The SDK refuses only a timestamp too old; Stripe's tolerance is the difference from the current time either way
  // (its PHP and .NET libraries refuse one too far ahead as well), so a signature dated more than the tolerance
  // ahead is refused the same way.
  if (verified && tolerance > 0) {
    stale = signedAt(signature) - Math.floor((opts.nowMs ?? Date.now()) / 1000) > tolerance;
    if (stale) verified = false;
  }
  if (!verified) {
    throw stale
      ? reject(`The signature timestamp is outside the ${tolerance} second tolerance.`, 'signature_expired')
      : reject('The Stripe-Signature header does not match the body.', 'signature_invalid');
  }
  try {
    event = JSON.parse(rawBody.toString('utf8'));
  } catch {
    // The signature matched, so Stripe (or someone holding the secret) sent a body that is not JSON.
    throw reject('The signed body is not valid JSON.', 'event_invalid');
  }
  if (jsonNestedDeeperThan(rawBody, MAX_EVENT_DEPTH)) {
    throw reject(
      `The signed body is not a Stripe event (it nests more than ${MAX_EVENT_DEPTH} levels deep).`,
      'event_invalid',
    );
  }
  const thin = thinEventOf(event);
  if (thin) return { thin };
  assertEventShape(event);
  return { event };
}
