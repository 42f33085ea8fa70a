import type { IncomingHttpHeaders } from 'node:http';
import { getSession, payCheckoutSession, refreshExpiry, sessionExtras } from './checkout-sessions.js';
import type { SandboxContext } from './context.js';
import { formatAmount } from './currencies.js';
import { EMAIL } from './email.js';
import { parseForm } from './form-parser.js';
import { SandboxError } from './stripe-error.js';
import { findTestCard, listTestCards } from './test-cards.js';
import type { CheckoutSessionObject } from './wire-types.js';

export interface PageResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const STYLE = `
body{font-family:system-ui,-apple-system,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0}
main{max-width:32rem;margin:2rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 2px 8px #0002}
h1{font-size:1.25rem;margin-top:0}table{width:100%;border-collapse:collapse;margin-bottom:1.5rem}
th,td{text-align:left;padding:.4rem 0;border-bottom:1px solid #e3e8ee}td.num,th.num{text-align:right;padding-left:1rem}
.desc{color:#697386;font-size:.85rem}label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input,select{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1.25rem;width:100%;padding:.75rem;font-size:1rem;background:#635bff;color:#fff;border:0;border-radius:6px}
#error{color:#df1b41;font-weight:600}.note{color:#697386;font-size:.8rem}`;

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function money(amount: number, currency: string): string {
  return `${formatAmount(amount, currency)} ${currency.toUpperCase()}`;
}

/**
 * The page takes a payment with one click on Pay, so no other site may frame it and trick that click out of the
 * customer (Stripe's own Checkout refuses framing too). X-Frame-Options for browsers that predate frame-ancestors.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
};

/**
 * default-src covers neither base-uri nor form-action: markup injected into the page could otherwise set a <base>
 * that moves where the form posts, or add a form of its own that sends the customer's details to another site.
 * The page's own form posts to the sandbox ('self'), but Chromium applies form-action to the redirects that follow
 * a form's submission too, and Pay answers 303 to the shop's success_url: with 'self' alone the payment was made
 * and the customer left on a blank refusal. So a session's page also allows its success_url's origin
 * (formActionSources).
 */
function contentSecurityPolicy(formAction: readonly string[]): string {
  return (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; " +
    `form-action ${["'self'", ...formAction].join(' ')}`
  );
}

/**
 * Where the page's form may lead besides the sandbox itself: the origin of the session's success_url, written as
 * a CSP source. A URL's host may hold characters that mean something in a policy (`https://a;b` parses, and a
 * host with `;` would start a directive of its own), and CSP has no way to write an IPv6 address: for any such
 * host the success_url's scheme (`https:`) is given instead, which lets the redirect through.
 */
function formActionSources(session: CheckoutSessionObject): string[] {
  let url: URL;
  try {
    url = new URL(successLocation(session));
  } catch {
    return [];
  }
  if (!/^[a-z0-9.-]+$/.test(url.hostname)) return [url.protocol];
  return [url.origin];
}

function page(
  status: number,
  title: string,
  content: string,
  formAction: readonly string[] = [],
): PageResponse {
  const body =
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>` +
    `<style>${STYLE}</style></head><body><main>${content}</main></body></html>`;
  return {
    status,
    headers: { ...PAGE_HEADERS, 'Content-Security-Policy': contentSecurityPolicy(formAction) },
    body,
  };
}

function renderSessionPage(
  ctx: SandboxContext,
  session: CheckoutSessionObject,
  status: number,
  options: { error?: string; email?: string; selected?: string } = {},
): PageResponse {
  const extras = sessionExtras(ctx, session);
  const rows = extras.lineItems
    .map((item, i) => {
      const description = extras.productDescriptions[i];
      return (
        `<tr class="line-item"><td><span class="name">${escapeHtml(item.description)}</span>` +
        (description ? `<br><span class="desc">${escapeHtml(description)}</span>` : '') +
        `</td><td class="num qty">${item.quantity}</td>` +
        `<td class="num">${escapeHtml(money(item.amount_total, item.currency))}</td></tr>`
      );
    })
    .join('');
  const total = escapeHtml(money(session.amount_total, session.currency));
  const summary =
    `<h1>Stripe sandbox checkout</h1><table id="line-items"><thead><tr><th>Item</th><th class="num">Qty</th>` +
    `<th class="num">Amount</th></tr></thead><tbody>${rows}</tbody><tfoot><tr><th colspan="2">Total</th>` +
    `<td class="num" id="total">${total}</td></tr></tfoot></table>`;

  if (session.status !== 'open') {
    const message =
      session.status === 'complete'
        ? 'This Checkout Session is complete: the payment has already been made.'
        : 'This Checkout Session has expired. Return to the shop to start again.';
    // Reached with the Back button from the shop's page after paying, or from an old link: without a way on, the
    // customer was stuck on a page that only said where to go.
    const onward = session.status === 'complete' ? successLocation(session) : session.cancel_url;
    const link = onward ? `<p><a id="return" href="${escapeHtml(onward)}">Return to the shop</a></p>` : '';
    return page(
      status,
      'Checkout unavailable',
      `${summary}<p id="status" data-status="${session.status}">${message}</p>${link}`,
    );
  }

  const selected = options.selected ?? 'pm_card_visa';
  const cards = listTestCards()
    .map(
      (card) =>
        `<option value="${escapeHtml(card.id)}"${card.id === selected ? ' selected' : ''}>` +
        `${escapeHtml(card.label)} · ${escapeHtml(card.id)}</option>`,
    )
    .join('');
  // A session made with customer_email shows it and does not ask (see checkoutPagePost).
  const fixed = session.customer_email !== null;
  const email = session.customer_email ?? options.email ?? '';
  // The answer to Pay is a new page: focused, the reason is what a screen reader says first, and Tab goes on to
  // the form from there. Without it the focus started at the top of the page, and the reason was not read out.
  const error = options.error
    ? `<div tabindex="-1" autofocus><p role="alert" id="error">${escapeHtml(options.error)}</p></div>`
    : '';
  const cancel = session.cancel_url
    ? `<p><a id="cancel" href="${escapeHtml(session.cancel_url)}">Cancel and return</a></p>`
    : '';
  const form =
    `<form method="post" action="/checkout/${encodeURIComponent(session.id)}" id="checkout-form">` +
    `<label for="email">Email</label><input type="email" id="email" name="email" value="${escapeHtml(email)}" ` +
    `autocomplete="email" required${fixed ? ' readonly' : ''}><label for="payment_method">Test card</label>` +
    `<select id="payment_method" name="payment_method">${cards}</select>` +
    `<button type="submit" id="pay">Pay ${total}</button></form>`;
  return page(
    status,
    'Pay · Stripe sandbox',
    `${summary}${error}${form}${cancel}<p class="note">Offline Stripe sandbox: no real card is charged.</p>`,
    formActionSources(session),
  );
}

function notFound(id: string): PageResponse {
  return page(
    404,
    'Not found',
    `<h1>Checkout Session not found</h1><p id="status">No such checkout session: ${escapeHtml(id)}</p>`,
  );
}

function findSession(ctx: SandboxContext, id: string): CheckoutSessionObject | undefined {
  try {
    return getSession(ctx, id);
  } catch (err) {
    if (err instanceof SandboxError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * `query`: the request's query string. `attempt=<n>` names the refused Pay whose POST redirected here: while the
 * session is open and that refusal is its latest, the page shows it (its reason, the email and card sent) with its
 * status (402 for a decline, 400 for a form in error).
 */
export function checkoutPageGet(ctx: SandboxContext, sessionId: string, query = ''): PageResponse {
  const session = findSession(ctx, sessionId);
  if (!session) return notFound(sessionId);
  const attempt = new URLSearchParams(query).get('attempt');
  const refusal = ctx.state.sessionExtras.get(session.id)?.lastRefusal;
  if (session.status === 'open' && refusal && attempt === String(refusal.number)) {
    const { status, error, email, selected } = refusal;
    return renderSessionPage(ctx, session, status, {
      error,
      ...(email === undefined ? {} : { email }),
      ...(selected === undefined ? {} : { selected }),
    });
  }
  return renderSessionPage(ctx, session, 200);
}

/**
 * A refused Pay answers 303 to the page (Post/Redirect/Get), which shows why: answered by the POST itself, the
 * refusal was a history entry only a second POST could show, so Back to it (after paying with another card) was the
 * browser's "Confirm Form Resubmission" error, and a reload sent the refused form again.
 */
function refused(
  ctx: SandboxContext,
  session: CheckoutSessionObject,
  status: number,
  options: { error: string; email?: string; selected?: string },
): PageResponse {
  const extras = sessionExtras(ctx, session);
  const number = (extras.lastRefusal?.number ?? 0) + 1;
  extras.lastRefusal = { number, status, ...options };
  const location = `/checkout/${encodeURIComponent(session.id)}?attempt=${number}`;
  const response = page(
    303,
    'Payment not completed',
    `<p>The payment was not completed. <a href="${escapeHtml(location)}">Back to the checkout page</a></p>`,
  );
  response.headers['Location'] = location;
  return response;
}

/**
 * `success_url` with the session id in place of `{CHECKOUT_SESSION_ID}`, serialized by the URL parser so that
 * non-ASCII and control characters (which the parser accepted at creation) are percent-encoded: raw, they are
 * not allowed in a Location header.
 */
function successLocation(session: CheckoutSessionObject): string {
  return new URL(session.success_url.split('{CHECKOUT_SESSION_ID}').join(session.id)).href;
}

/**
 * Whether a POST to the page was sent by another origin's page: a form there that posts to the checkout (the
 * session's id is in its URL, which reaches the shop's pages and logs) would pay with the customer's browser, which
 * reaches a sandbox on loopback that the other site cannot. The browser says where the form was: `Sec-Fetch-Site`
 * (its own verdict, trusted as it is: a proxy that rewrites `Host` does not change it), else `Origin` (`null` from
 * a sandboxed frame or a data: URL), compared with the `Host` the request names. Test code and curl send neither,
 * and are answered.
 */
export function postedFromElsewhere(headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site'];
  if (site !== undefined) return site !== 'same-origin' && site !== 'none';
  if (headers.origin === undefined) return false;
  try {
    const origin = new URL(headers.origin);
    return new URL(`${origin.protocol}//${headers.host ?? ''}`).host !== origin.host;
  } catch {
    return true;
  }
}

/** The answer to a form another site's page sent (postedFromElsewhere): nothing paid, and the way to the page. */
export function postedFromElsewherePage(sessionId: string): PageResponse {
  return page(
    403,
    'Payment not accepted',
    `<h1>Payment not accepted</h1><p id="status">This payment form was sent from another site, so nothing was ` +
      `charged. To pay, open the checkout page itself.</p>` +
      `<p><a id="return" href="/checkout/${encodeURIComponent(sessionId)}">Open the checkout page</a></p>`,
  );
}

/** The Pay button: 303 to `success_url` on success, 303 to the page showing the error otherwise (refused). */
export function checkoutPagePost(ctx: SandboxContext, sessionId: string, body: string): PageResponse {
  const session = findSession(ctx, sessionId);
  if (!session) return notFound(sessionId);
  refreshExpiry(ctx, session);
  if (session.status !== 'open') return renderSessionPage(ctx, session, 409);

  let form: Record<string, unknown>;
  try {
    form = parseForm(body);
  } catch {
    return refused(ctx, session, 400, { error: 'The form could not be read. Please try again.' });
  }
  // Stripe asks for an address only when the session was made without one: "If not provided, customers will be
  // asked to enter their email address" (docs.stripe.com/api/checkout/sessions/create#customer_email). A session's
  // customer_email is the one paid with, whatever the form sends.
  const rawEmail = typeof form['email'] === 'string' ? form['email'].trim() : '';
  const email = session.customer_email ?? rawEmail;
  const paymentMethod = typeof form['payment_method'] === 'string' ? form['payment_method'] : '';
  if (!EMAIL.test(email)) {
    return refused(ctx, session, 400, {
      error: 'Enter a valid email address.',
      email: rawEmail,
      selected: paymentMethod,
    });
  }
  if (!findTestCard(paymentMethod)) {
    return refused(ctx, session, 400, { error: 'Choose one of the test cards.', email });
  }
  // Worked out before the charge: nothing may fail once the customer has paid.
  const location = successLocation(session);
  try {
    payCheckoutSession(ctx, session, email, paymentMethod);
  } catch (err) {
    if (err instanceof SandboxError) {
      return refused(ctx, session, err.status === 402 ? 402 : 400, {
        error: err.fields.message,
        email,
        selected: paymentMethod,
      });
    }
    throw err;
  }
  const response = page(
    303,
    'Redirecting',
    `<p>Payment complete. <a href="${escapeHtml(location)}">Continue</a></p>`,
  );
  response.headers['Location'] = location;
  return response;
}
