/**
 * One pino logger for the process. Redaction works twice: known fields by path, and a last-line
 * filter on every written line for anything shaped like a Stripe key, client secret, webhook secret,
 * signature or password in a URL, so a secret that slips into a message or error still never reaches the logs.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

const SECRET_PATTERNS: readonly [RegExp, string][] = [
  [/\b(sk|rk)_(test|live)_[A-Za-z0-9]+/g, '$1_$2_[REDACTED]'],
  [/\bpk_(test|live)_[A-Za-z0-9]+/g, 'pk_$1_[REDACTED]'],
  [/\bwhsec_[A-Za-z0-9+/=_]+/g, 'whsec_[REDACTED]'],
  [/\b((?:pi|seti|cs)_[A-Za-z0-9_]+?)_secret_[A-Za-z0-9]+/g, '$1_secret_[REDACTED]'],
  [/\bv[01]=[0-9a-f]{16,}/g, 'v1=[REDACTED]'],
  [/\b(psk|ppk)_[A-Za-z0-9_-]{16,}/g, '$1_[REDACTED]'],
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1[REDACTED]'],
  // The password in a connection URL (postgres://user:pass@host, amqp://guest:guest@host), whoever logs it. Tried
  // only where a run of scheme characters starts, not at each word boundary within it: from every "a" of a request
  // URL such as /a.a.a... (16 kB, logged for anyone's request) the run was scanned again, 140 ms of the event loop.
  [/(?<![a-z0-9+.-])([0-9+.-]*[a-z][a-z0-9+.-]*:\/\/[^\s:@/"]*):[^\s@/"]+@/gi, '$1:[REDACTED]@'],
];

export function scrubSecrets(line: string): string {
  let out = line;
  for (const [re, replacement] of SECRET_PATTERNS) out = out.replace(re, replacement);
  return out;
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

/** Keeps what helps an operator and drops what may carry request data (raw bodies, headers). */
export function serializeError(err: unknown): Record<string, unknown> {
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
  if (e.cause !== undefined) out.cause = serializeError(e.cause);
  return out;
}
