// The success page: the paid session's details, then a full refund through the async path, followed live.
import { ApiError, api, clearError, isTransient, loadConfig, showError } from './api.js';
import { formatMoney, minorUnits } from './money.js';

const FINAL = new Set(['succeeded', 'failed', 'canceled']);
/**
 * Final statuses that never move again. A `succeeded` refund still becomes `failed` when the customer's bank
 * returns the money (pm_card_refundFail does that a moment later), so the page goes on following it.
 */
const SETTLED = new Set(['failed', 'canceled']);
const NOTES = {
  queued: 'stored; waiting for the refund worker',
  processing: 'the worker is asking Stripe',
  pending: 'Stripe accepted it; the bank has not settled it yet',
  requires_action: 'Stripe needs the customer to act',
  succeeded: 'the money is back on the card',
  failed: 'Stripe could not refund it',
  canceled: 'the refund was canceled',
};
const POLL_FIRST_MS = 250;
const POLL_MAX_MS = 3000;
/**
 * After the first minute the checks back off, doubling up to every five minutes: a succeeded refund can still
 * fail days later, and a tab left open polled it every 3 s for as long as it stayed open.
 */
const POLL_FAST_FOR_MS = 60_000;
const POLL_SLOW_MAX_MS = 5 * 60_000;

const $ = (id) => document.getElementById(id);

function setText(id, text) {
  $(id).textContent = text;
}

/** The same id for every refund click on one payment, so a reload or a double click refunds once. */
function refundRequestId(paymentIntentId) {
  return `demo-refund-${paymentIntentId}`;
}

function showRefundStatus(status, failureReason) {
  const badge = $('refund-status');
  const history = $('refund-history');
  $('refund-progress').hidden = false;
  badge.textContent = status;
  badge.dataset.status = status;
  badge.dataset.final = String(FINAL.has(status));
  const note = NOTES[status] ?? '';
  setText('refund-note', failureReason ? `(${note}: ${failureReason})` : note ? `(${note})` : '');
  if (history.lastElementChild?.dataset.status !== status) {
    const item = document.createElement('li');
    item.dataset.status = status;
    item.textContent = status;
    history.append(item);
  }
}

/** "45 s", "2 min": how long until the next check, as the page says it. */
function spanOf(ms) {
  return ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}

/**
 * Says when the refund's status was last read, and when it will be read again (`nextMs`; null when it will not).
 * data-checking is "true" while a check is under way.
 */
function showChecked(checkedAt, nextMs, checking) {
  const line = $('refund-checked');
  line.dataset.checking = String(checking);
  if (checkedAt === null) return;
  line.hidden = false;
  line.dataset.checkedAt = checkedAt.toISOString();
  line.dataset.nextMs = nextMs === null ? '' : String(nextMs);
  const when = `Last checked at ${checkedAt.toLocaleTimeString()}`;
  line.textContent = checking
    ? `${when}; checking now…`
    : nextMs === null
      ? `${when}.`
      : `${when}; next check in ${spanOf(nextMs)}.`;
}

async function follow(requestId) {
  setText('refund-request-id', requestId);
  const started = Date.now();
  let delay = POLL_FIRST_MS;
  let checkedAt = null;
  for (;;) {
    showChecked(checkedAt, null, true);
    let refund;
    let wait = delay;
    try {
      refund = await api(`/refund-status/${encodeURIComponent(requestId)}`);
    } catch (err) {
      // A blip (network, 5xx, the rate limit's 429) is worth waiting out, as long as the API asks; another 4xx
      // will not change by asking again.
      if (!isTransient(err)) {
        showChecked(checkedAt, null, false);
        throw err;
      }
      showError(err);
      refund = null;
      if (err instanceof ApiError && err.retryAfter !== undefined)
        wait = Math.max(delay, err.retryAfter * 1000);
    }
    if (refund) {
      checkedAt = new Date();
      clearError();
      showRefundStatus(refund.status, refund.failure_reason);
      if (SETTLED.has(refund.status)) {
        showChecked(checkedAt, null, false);
        return refund;
      }
    }
    showChecked(checkedAt, wait, false);
    await new Promise((resolve) => setTimeout(resolve, wait));
    delay =
      Date.now() - started < POLL_FAST_FOR_MS
        ? Math.min(POLL_MAX_MS, Math.round(delay * 1.5))
        : Math.min(POLL_SLOW_MAX_MS, Math.max(POLL_MAX_MS, delay * 2));
  }
}

async function refund(paymentIntentId) {
  const button = $('refund');
  button.disabled = true;
  clearError();
  try {
    const queued = await api('/refund-async', {
      method: 'POST',
      body: { payment_intent_id: paymentIntentId, request_id: refundRequestId(paymentIntentId) },
    });
    showRefundStatus(queued.status ?? 'queued', null);
    // The pressed button is disabled from now on, which drops the keyboard's focus to nowhere (a screen reader
    // starts again from the top of the page): it goes to the refund's status instead.
    $('refund-status-line').focus();
    await follow(queued.request_id);
  } catch (err) {
    showError(err);
    button.disabled = false;
    button.focus();
  }
}

/**
 * A refund started before a reload is picked up again instead of offering the button. When the check itself
 * meets a blip (a 429, a 5xx, no answer) the button is offered with the error: pressing it sends the same
 * request_id, which answers the earlier refund if there is one and never makes a second.
 */
async function resume(paymentIntentId) {
  const requestId = refundRequestId(paymentIntentId);
  try {
    await api(`/refund-status/${encodeURIComponent(requestId)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return false;
    if (isTransient(err)) {
      showError(err);
      return false;
    }
    throw err;
  }
  await follow(requestId);
  return true;
}

/**
 * The paid session, read as many times as it takes to get past a blip (no answer, a 5xx such as Stripe not
 * answering, the rate limit's 429), waiting as Retry-After says: the customer has just paid, and a blip is no
 * missing order. Any other error (a 404 for an unknown id, a 401) is thrown as it is.
 */
async function loadSession(sessionId) {
  let delay = 1000;
  for (;;) {
    try {
      const session = await api(`/checkout-session?session_id=${encodeURIComponent(sessionId)}`);
      clearError();
      return session;
    } catch (err) {
      if (!isTransient(err)) throw err;
      showError(err);
      const wait =
        err instanceof ApiError && err.retryAfter !== undefined
          ? Math.max(delay, err.retryAfter * 1000)
          : delay;
      setText('load-status', `The order could not be loaded yet; trying again in ${spanOf(wait)}…`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      setText('load-status', 'Loading the checkout session…');
      delay = Math.min(30_000, delay * 2);
    }
  }
}

async function init() {
  const config = await loadConfig();
  const sessionId = new URL(window.location.href).searchParams.get('session_id');
  if (!sessionId) {
    setText('load-status', '');
    setText('title', 'No order to show');
    throw new Error('This page needs a ?session_id=cs_... parameter (the store adds it after checkout).');
  }
  if (config.authRequired) {
    setText('load-status', '');
    $('auth-notice').hidden = false;
    return;
  }
  let session;
  try {
    session = await loadSession(sessionId);
  } catch (err) {
    setText('load-status', '');
    setText('title', 'Order not found');
    throw err;
  }
  const units = minorUnits(config);
  const paid = session.payment_status === 'paid';
  setText('title', paid ? 'Thank you for your order' : 'Payment not completed');
  setText('load-status', '');
  const badge = $('payment-status');
  badge.textContent = session.payment_status;
  badge.dataset.status = session.payment_status;
  const amount = $('amount');
  amount.textContent = formatMoney(session.amount_total, session.currency, units);
  amount.dataset.amount = String(session.amount_total ?? '');
  amount.dataset.currency = session.currency ?? '';
  setText('email', session.customer_email ?? '—');
  setText('payment-intent', session.payment_intent ?? '—');
  setText('session-id', session.id ?? sessionId);
  $('session').hidden = false;
  document.body.dataset.ready = 'true';

  if (!paid || !session.payment_intent) return;
  $('refund-section').hidden = false;
  const button = $('refund');
  button.addEventListener('click', () => void refund(session.payment_intent));
  if (!(await resume(session.payment_intent))) button.disabled = false;
}

init().catch(showError);
