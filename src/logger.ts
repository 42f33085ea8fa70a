/**
 * One pino logger for the process. Redaction works twice: known fields by path, and a last-line
 * filter on every written line for anything shaped like a Stripe key, client secret, webhook secret,
 * signature or password in a URL, so a secret that slips into a message or error still never reaches the logs.
 */
import { inspect } from 'node:util';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/**
 * What may come right before a secret: not a letter, digit or underscore (what \b said), or what the written line
 * escapes. The line is JSON, so a newline or tab before a secret is written `\n` or `\t`, a control character
 * `\u001b`, and a secret in a URL's query is often percent-encoded after `%3D` (=) or `%22` ("): the letter or digit
 * before it made \b fail, and the whole secret was written (a return URL in a query string,
 * `...%3Fpayment_intent_client_secret%3Dpi_..._secret_...`).
 */
const BEFORE = String.raw`(?:^|[^A-Za-z0-9_]|\\[nrtbf]|\\u[0-9A-Fa-f]{4}|%[0-9A-Fa-f]{2})`;

/**
 * Before a key (sk_, rk_, pk_, whsec_, psk_, ppk_), an underscore too: ids and names glued together with one put a
 * key right after it (`cs_test_` + a key a client sent as a session id, `pi_` + one as a payment intent id), and the
 * service, the Stripe calls and the sandbox logged the whole key. What else such a prefix follows an underscore in
 * is redacted too, losing a little of a line.
 */
const BEFORE_KEY = String.raw`(?:^|[^A-Za-z0-9]|\\[nrtbf]|\\u[0-9A-Fa-f]{4}|%[0-9A-Fa-f]{2})`;

/**
 * `head` then `rest`, where `head` starts a secret. The check of what comes before is a lookbehind placed after
 * `head`, not before it: a pattern that starts with a lookbehind cannot be searched for by its first characters, and
 * tried at every position of a line it made each written line 8 times slower (25 µs for a request's line).
 */
function secret(head: string, rest: string, before = BEFORE): RegExp {
  const plainHead = head.replace(/\((?!\?)/g, '(?:');
  return new RegExp(`${head}(?<=${before}${plainHead})${rest}`, 'g');
}

const SECRET_PATTERNS: readonly [RegExp, string][] = [
  // Underscores included: the configuration takes keys such as sk_test_compose_fake_key (docker-compose's), of which
  // only the part up to the first underscore after sk_test_ was redacted.
  [secret('(sk|rk)_(test|live)_', '[A-Za-z0-9_]+', BEFORE_KEY), '$1_$2_[REDACTED]'],
  // Stripe's own masked form, quoted by its "Invalid API Key provided: sk_test_****abcd": the key's last characters.
  [secret(String.raw`(sk|rk)_(test|live)_\*`, String.raw`\**[A-Za-z0-9_]*`, BEFORE_KEY), '$1_$2_[REDACTED]'],
  [secret('pk_(test|live)_', '[A-Za-z0-9_]+', BEFORE_KEY), 'pk_$1_[REDACTED]'],
  [secret('whsec_', '[A-Za-z0-9+/=_]+', BEFORE_KEY), 'whsec_[REDACTED]'],
  [secret('(pi|seti|cs)_', '([A-Za-z0-9_]+?)_secret_[A-Za-z0-9]+'), '$1_$2_secret_[REDACTED]'],
  [secret('v[01]=', '[0-9a-f]{16,}'), 'v1=[REDACTED]'],
  [secret('(psk|ppk)_', '[A-Za-z0-9_-]{16,}', BEFORE_KEY), '$1_[REDACTED]'],
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1[REDACTED]'],
  // The password in a connection URL (postgres://user:pass@host, amqp://guest:guest@host), whoever logs it. Tried
  // only where a run of scheme characters starts, not at each word boundary within it: from every "a" of a request
  // URL such as /a.a.a... (16 kB, logged for anyone's request) the run was scanned again, 140 ms of the event loop.
  // A password already masked (`***`, as redactDatabaseUrl writes it) is left as it is.
  [/(?<![a-z0-9+.-])([0-9+.-]*[a-z][a-z0-9+.-]*:\/\/[^\s:@/"]*):(?!\*+@)[^\s@/"]+@/gi, '$1:[REDACTED]@'],
];

/**
 * A query parameter named for a secret (?password=, &token=, ?api_key=, ?client_secret=, ?sslpassword= of a
 * connection URL): a client may put its credentials in a request's query string, which the request's line logs.
 * The name is tested apart from the search: one pattern for both scanned a long name once for each "pass" in it
 * (57 ms for a 16 kB query of them).
 */
// A value runs over the line's JSON escapes (`\"`, `\\`): cut at one, its backslash went and the quote it escaped
// ended the string, so the line no longer parsed and the rest of the value was written.
const QUERY_PARAMETER = /([?&])([A-Za-z0-9_.-]+)=((?:[^&\s"#\\]|\\.)*)/g;
const SECRET_NAME = /pass|secret|token|api_?key|signature|credential/i;
/**
 * A value masked already (`***`, as redactDatabaseUrl writes it, or `[REDACTED]`), with at most the closing
 * punctuation of the text around it: left as it is. Redacted again, it took that punctuation with it, and the advice
 * of a refused start read `(postgres://app@db/payments?password=[REDACTED] PostgreSQL must ...`, its `):` gone.
 */
const MASKED_VALUE = /^(?:\*{3}|\[REDACTED\])[)\]}>'.,;:!?]*$/;
const redactSecretParameter = (whole: string, sep: string, name: string, value: string) =>
  value !== '' && SECRET_NAME.test(name) && !MASKED_VALUE.test(value) ? `${sep}${name}=[REDACTED]` : whole;

export function scrubSecrets(line: string): string {
  let out = line;
  for (const [re, replacement] of SECRET_PATTERNS) out = out.replace(re, replacement);
  if (out.includes('=')) out = out.replace(QUERY_PARAMETER, redactSecretParameter);
  return out;
}

/**
 * An error for an entry point's last-resort report on stderr, where no logger is left to filter it: as
 * console.error shows it (stack, properties, cause), or only its message, through {@link scrubSecrets}.
 */
export function errorForStderr(err: unknown, opts: { messageOnly?: boolean } = {}): string {
  const text =
    opts.messageOnly && err instanceof Error ? err.message : typeof err === 'string' ? err : inspect(err);
  return scrubSecrets(text);
}

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["stripe-signature"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.clientSecret',
  '*.client_secret',
  '*.secretKey',
  '*.webhookSecret',
  '*.webhookSecrets',
  '*.apiKey',
  '*.password',
  'clientSecret',
  'client_secret',
  'secretKey',
  'apiKey',
];

export interface LoggerConfig {
  level: LoggerOptions['level'];
  name?: string;
}

export function createLogger(cfg: LoggerConfig, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level: cfg.level,
    name: cfg.name ?? 'payments',
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    hooks: { streamWrite: scrubSecrets },
    serializers: { err: serializeError },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * V8's JSON.parse quotes the text around where it stopped (`Unexpected token 'j', ..."l": jane.doe@"... is not
 * valid JSON`): from a request body, that may be a customer's e-mail address or anything else the client sent.
 */
const JSON_EXCERPT = /,? ?(?:\.\.\.)?"[\s\S]*"(?:\.\.\.)? is not valid JSON/;

/** The message of an error made from the request body (body-parser attaches the body to it), without the body's text. */
function withoutBodyText(message: string): string {
  return message.replace(JSON_EXCERPT, ' (request body text left out): not valid JSON');
}

/**
 * Causes followed, at most: an error that is its own cause (or a cause's) was followed until the stack overflowed,
 * so logging it threw. For an uncaught exception that throw came from the handler meant to log it, and Node then
 * printed the error itself, all its fields and unfiltered, secrets included.
 */
const MAX_CAUSES = 8;

/** Keeps what helps an operator and drops what may carry request data (raw bodies, headers). */
export function serializeError(err: unknown, depth = 0): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const e = err as Error & Record<string, unknown>;
  // Such an error's stack would repeat its message in its first line, and says nothing useful about a parse.
  const out: Record<string, unknown> =
    'body' in e
      ? { type: e.name, message: withoutBodyText(e.message) }
      : { type: e.name, message: e.message, stack: e.stack };
  for (const k of ['code', 'type', 'statusCode', 'status', 'requestId', 'decline_code', 'param']) {
    if (e[k] !== undefined && typeof e[k] !== 'object') out[k === 'type' ? 'errorType' : k] = e[k];
  }
  if (e.cause !== undefined && depth < MAX_CAUSES) out.cause = serializeError(e.cause, depth + 1);
  return out;
}
