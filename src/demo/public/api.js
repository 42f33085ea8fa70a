// Shared by the demo pages: reading /demo/config.json, calling the payment API, showing its problems.

/** An answer from the API that is not 2xx, carrying its RFC 9457 problem body when it sent one. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
    /** Seconds the API asked to wait before asking again (Retry-After), if it did. */
    this.retryAfter = retryAfter ?? (Number.isInteger(problem.retry_after) ? problem.retry_after : undefined);
  }
}

/**
 * True when asking again later may get another answer: no answer at all, 408, 425, 429 (the rate limit) or a 5xx.
 * Any other 4xx will not change by asking again.
 */
export function isTransient(err) {
  if (!(err instanceof ApiError)) return true;
  return err.status === 0 || [408, 425, 429].includes(err.status) || err.status >= 500;
}

let configPromise;

export function loadConfig() {
  configPromise ??= fetch('config.json', { headers: { accept: 'application/json' } }).then((res) => {
    if (!res.ok) throw new Error(`The demo configuration could not be loaded (HTTP ${res.status}).`);
    return res.json();
  });
  return configPromise;
}

async function readProblem(res) {
  const text = await res.text();
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') return body;
  } catch {
    // a proxy or a crash answered in something else than JSON
  }
  return { title: res.statusText || 'Error', status: res.status, detail: text.slice(0, 300) || undefined };
}

/** Calls the API; resolves to the JSON body of a 2xx, rejects with ApiError otherwise. */
export async function api(path, { method = 'GET', body } = {}) {
  const { apiBase } = await loadConfig();
  let res;
  try {
    res = await fetch(`${apiBase}${path}`, {
      method,
      headers: {
        accept: 'application/json, application/problem+json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, {
      title: 'Network error',
      detail: `The payment service could not be reached (${err.message}).`,
    });
  }
  if (!res.ok) {
    const retryAfter = /^\d+$/.test(res.headers.get('retry-after') ?? '')
      ? Number(res.headers.get('retry-after'))
      : undefined;
    throw new ApiError(res.status, await readProblem(res), retryAfter);
  }
  return res.json();
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** True when the API refused us for want of an API key: the demo cannot work with API_AUTH=on. */
export function isAuthProblem(err) {
  return err instanceof ApiError && (err.status === 401 || err.status === 403);
}

export function showAuthNotice() {
  const notice = document.getElementById('auth-notice');
  if (notice) notice.hidden = false;
}

/** Fills the page's alert box with a readable version of an error (problem+json or anything thrown). */
export function showError(err) {
  const box = document.getElementById('error');
  box.replaceChildren();
  if (isAuthProblem(err)) showAuthNotice();
  if (err instanceof ApiError) {
    const p = err.problem;
    const heading = p.status ? `${p.title || 'Error'} (${p.status})` : p.title || 'Error';
    box.append(el('strong', { class: 'problem-title' }, heading));
    if (p.detail) box.append(el('span', { class: 'problem-detail' }, ` ${p.detail}`));
    if (Array.isArray(p.errors) && p.errors.length > 0) {
      const list = el('ul', { class: 'problem-errors' });
      for (const e of p.errors) list.append(el('li', {}, `${e.path}: ${e.message}`));
      box.append(list);
    }
    const meta = [
      p.code && `code ${p.code}`,
      p.decline_code && `decline ${p.decline_code}`,
      p.request_id && `request ${p.request_id}`,
    ].filter(Boolean);
    if (meta.length > 0) box.append(el('small', { class: 'problem-meta' }, meta.join(' · ')));
  } else {
    box.append(el('strong', { class: 'problem-title' }, 'Something went wrong.'));
    box.append(
      el('span', { class: 'problem-detail' }, ` ${err instanceof Error ? err.message : String(err)}`),
    );
  }
  box.hidden = false;
}

export function clearError() {
  const box = document.getElementById('error');
  box.replaceChildren();
  box.hidden = true;
}
