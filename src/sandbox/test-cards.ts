export interface CardDecline {
  /** `code` on the error and `failure_code` on the charge. */
  code: string;
  /**
   * The issuer's reason, on a `card_declined` error only. Stripe's testing docs list none ("n/a") for the expired
   * card, incorrect CVC and processing error cards (docs.stripe.com/testing#declined-payments), and its answers for
   * them carry `code` alone (e.g. `{"code": "expired_card", "param": "exp_month", ...}`, stripe/stripe-dotnet#1566;
   * `incorrect_cvc`, mozilla/fxa#3240).
   */
  decline_code?: string;
  /** The charge's `outcome.reason`. */
  reason: string;
  message: string;
  /**
   * The card field at fault, on the error and the intent's last_payment_error: `exp_month` for the expired card
   * (`{"code": "expired_card", "param": "exp_month", ...}`, stripe/stripe-dotnet#1566) and `cvc` for an incorrect
   * CVC (a PaymentIntent confirm's `{"code": "incorrect_cvc", "param": "cvc", ...}`); none on a card_declined
   * decline or a processing error.
   */
  param?: string;
}

export interface TestCard {
  /** The magic PaymentMethod id from Stripe's testing docs. */
  id: string;
  label: string;
  brand: 'visa' | 'mastercard' | 'amex';
  last4: string;
  decline?: CardDecline;
  /**
   * How refunds of a charge paid with this card settle (https://docs.stripe.com/testing#refunds): 4000000000005126
   * begins `succeeded` and later moves to `failed`; 4000000000007726 begins `pending` and later succeeds.
   */
  refund?: 'succeeded_then_failed' | 'pending_then_succeeded';
  /**
   * The card's issuer asks for 3D Secure (https://docs.stripe.com/testing#regulatory-cards): confirming through the
   * API leaves the PaymentIntent `requires_action` until the customer authenticates (Stripe.js; here the control
   * API's `POST /_sandbox/payment_intents/:id/authenticate`). The hosted checkout page authenticates on the page.
   */
  authentication?: 'required';
}

const declined = (decline_code: string, message = 'Your card was declined.'): CardDecline => ({
  code: 'card_declined',
  decline_code,
  reason: decline_code,
  message,
});

/** A card error Stripe answers with its own `code` and no decline code (the outcome's reason is that code). */
const cardError = (code: string, message: string, param?: string): CardDecline => ({
  code,
  reason: code,
  message,
  ...(param === undefined ? {} : { param }),
});

const CARDS: readonly TestCard[] = [
  { id: 'pm_card_visa', label: 'Visa (succeeds)', brand: 'visa', last4: '4242' },
  { id: 'pm_card_mastercard', label: 'Mastercard (succeeds)', brand: 'mastercard', last4: '4444' },
  { id: 'pm_card_amex', label: 'American Express (succeeds)', brand: 'amex', last4: '8431' },
  {
    id: 'pm_card_chargeDeclined',
    label: 'Declined: generic decline',
    brand: 'visa',
    last4: '0002',
    decline: declined('generic_decline'),
  },
  {
    id: 'pm_card_chargeDeclinedInsufficientFunds',
    label: 'Declined: insufficient funds',
    brand: 'visa',
    last4: '9995',
    decline: declined('insufficient_funds', 'Your card has insufficient funds.'),
  },
  {
    id: 'pm_card_chargeDeclinedLostCard',
    label: 'Declined: lost card',
    brand: 'visa',
    last4: '9987',
    decline: declined('lost_card'),
  },
  {
    id: 'pm_card_chargeDeclinedStolenCard',
    label: 'Declined: stolen card',
    brand: 'visa',
    last4: '9979',
    decline: declined('stolen_card'),
  },
  {
    id: 'pm_card_chargeDeclinedExpiredCard',
    label: 'Declined: expired card',
    brand: 'visa',
    last4: '0069',
    decline: cardError('expired_card', 'Your card has expired.', 'exp_month'),
  },
  {
    id: 'pm_card_chargeDeclinedIncorrectCvc',
    label: 'Declined: incorrect CVC',
    brand: 'visa',
    last4: '0127',
    decline: cardError('incorrect_cvc', "Your card's security code is incorrect.", 'cvc'),
  },
  {
    id: 'pm_card_chargeDeclinedProcessingError',
    label: 'Declined: processing error',
    brand: 'visa',
    last4: '0119',
    decline: cardError(
      'processing_error',
      'An error occurred while processing your card. Try again in a little bit.',
    ),
  },
  {
    id: 'pm_card_threeDSecure2Required',
    label: 'Visa (3D Secure 2 required)',
    brand: 'visa',
    last4: '3220',
    authentication: 'required',
  },
  {
    id: 'pm_card_authenticationRequired',
    label: 'Visa (authentication required)',
    brand: 'visa',
    last4: '3184',
    authentication: 'required',
  },
  {
    id: 'pm_card_refundFail',
    label: 'Visa (succeeds, refunds fail)',
    brand: 'visa',
    last4: '5126',
    refund: 'succeeded_then_failed',
  },
  {
    id: 'pm_card_pendingRefund',
    label: 'Visa (succeeds, refunds stay pending)',
    brand: 'visa',
    last4: '7726',
    refund: 'pending_then_succeeded',
  },
];

const ALIASES: Readonly<Record<string, string>> = Object.freeze({
  pm_card_insufficientFunds: 'pm_card_chargeDeclinedInsufficientFunds',
});

const BY_ID = new Map(CARDS.map((c) => [c.id, c]));

export function listTestCards(): readonly TestCard[] {
  return CARDS;
}

export function findTestCard(id: string): TestCard | undefined {
  return BY_ID.get(ALIASES[id] ?? id);
}
