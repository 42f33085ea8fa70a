/**
 * STRIPE_WEBHOOK_SECRET holds one signing secret, or several separated by commas while one is being rolled:
 * Stripe then signs each event with the old and the new secret for as long as the old one is kept (up to 24 h),
 * and an event is accepted when any of the listed secrets verifies it. whsec_ secrets never contain a comma.
 */

/** Each secret costs an HMAC of every body received, unverifiable ones included; a roll needs two. */
export const MAX_WEBHOOK_SECRETS = 5;

const SIGNING_SECRET = /^whsec_[A-Za-z0-9_+/=]+$/;

/**
 * The secrets in `value`, in order, each trimmed. Throws an Error whose message says what is wrong with which
 * item (by position), never what the item holds.
 */
export function parseWebhookSecrets(value: string): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.length > MAX_WEBHOOK_SECRETS) {
    throw new Error(`lists ${items.length} secrets; at most ${MAX_WEBHOOK_SECRETS} are allowed`);
  }
  const which = (i: number) => (items.length === 1 ? '' : `secret ${i + 1} of ${items.length} `);
  items.forEach((item, i) => {
    if (item === '') {
      throw new Error(
        `${which(i)}is empty: separate secrets with single commas, with nothing after the last`,
      );
    }
    if (!SIGNING_SECRET.test(item)) {
      throw new Error(`${which(i)}must be a webhook signing secret (whsec_...)`);
    }
  });
  return items;
}

/** The secret this service's own senders sign with (the embedded sandbox, `npm run webhook`): the first. */
export function signingSecretOf(value: string): string {
  return value.split(',')[0]!.trim();
}
