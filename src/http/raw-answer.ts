/**
 * Problem answers made before Express sees a request: HTTP Node could not parse or that did not arrive in time
 * (the server's 'clientError'), an `Expect` other than 100-continue ('checkExpectation') and CONNECT ('connect').
 * Written by hand, so they carry by hand what the app sets on every other answer: the API's security headers and
 * an X-Request-Id, which the problem body repeats as its request_id, so that a client or an operator can match the
 * answer with the service's log line for it. Each closes its connection.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { API_HEADERS } from './api-headers.js';
import { PROBLEM_CONTENT_TYPE, problemBody } from './problem.js';
import { isPlainRequestId } from './request-id.js';

/** The id of an answer made before Express: `given` when it is plain (as requestIdFor keeps one), a new one otherwise. */
export function rawRequestId(given: unknown): string {
  return isPlainRequestId(given) ? given : randomUUID();
}

export interface RawProblem {
  status: number;
  detail: string;
  requestId: string;
  /** Headers of this answer's own, before the common ones (CONNECT's `Allow`). */
  headers?: ReadonlyArray<readonly [string, string]>;
}

interface Built {
  title: string;
  headers: [string, string][];
  body: string;
}

function build(problem: RawProblem): Built {
  const { status, detail, requestId } = problem;
  // No instance: the request's path is unknown (it could not be parsed) or is none of the service's (CONNECT).
  const body = JSON.stringify(problemBody(status, { detail, requestId }));
  return {
    title: STATUS_CODES[status] ?? 'Error',
    headers: [
      ...(problem.headers ?? []).map(([name, value]): [string, string] => [name, value]),
      ['Content-Type', PROBLEM_CONTENT_TYPE],
      ['Content-Length', String(Buffer.byteLength(body))],
      ...API_HEADERS.map(([name, value]): [string, string] => [name, value]),
      ['X-Request-Id', requestId],
      ['Connection', 'close'],
    ],
    body,
  };
}

/**
 * Writes the answer on a socket Node's HTTP server does not (or no longer) answer on, and closes it. The answer to
 * a HEAD has no body: a client reads none, and would take the problem's bytes for another answer.
 */
export function endSocketWithProblem(
  socket: Duplex,
  problem: RawProblem,
  opts: { head?: boolean } = {},
): void {
  const { title, headers, body } = build(problem);
  const lines = [
    `HTTP/1.1 ${problem.status} ${title}`,
    ...headers.map(([name, value]) => `${name}: ${value}`),
  ];
  socket.on('error', () => socket.destroy());
  socket.write(`${lines.join('\r\n')}\r\n\r\n${opts.head ? '' : body}`);
  // Destroyed once written, not only half-closed: Node's server is half-open and no longer reads or times out a
  // socket it handed over (CONNECT), so a client keeping its side open held the connection, and a place under
  // MAX_CONNECTIONS, for as long as it liked.
  endSocket(socket);
}

/** The response Node has in flight on `socket`: the one to the oldest request on it not answered yet. */
export function responseInFlight(socket: Duplex): ServerResponse | undefined {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/**
 * The response to the last request Node read on `socket` (the one queued last, behind those in flight), when the
 * app took that request: Express links each request to its response (`req.res`).
 */
export function lastResponse(socket: Duplex): ServerResponse | undefined {
  const parser = (socket as Duplex & { parser?: { incoming?: IncomingMessage | null } | null }).parser;
  return (parser?.incoming as (IncomingMessage & { res?: ServerResponse }) | null | undefined)?.res;
}

/**
 * HTTP/1.1 pipelining: answers go out in the order their requests came (RFC 9112, 9.3.2), so a raw answer to a
 * request read after others must not be written before theirs. Calls `each` with every response Node has in flight
 * on `socket`, oldest first (the next one is in flight once the one before has finished); `each` answers false to
 * stop waiting (it has dealt with the connection). Then calls `done`, once none is left. A response that never
 * finishes (its connection closed first) ends the wait: there is nothing more to write.
 */
export function afterResponsesInFlight(
  socket: Duplex,
  each: (res: ServerResponse) => boolean,
  done: () => void,
): void {
  const next = (): void => {
    const res = responseInFlight(socket);
    if (!res) {
      done();
      return;
    }
    // Node's own 'finish' listener (added first, so run first) hands the socket to the next response, or ends it.
    if (each(res)) res.once('finish', next);
  };
  next();
}

/** Ends a connection once what was written on it has gone out. */
export function endSocket(socket: Duplex): void {
  const net = socket as Duplex & { destroySoon?: () => void };
  if (typeof net.destroySoon === 'function') net.destroySoon();
  else socket.end();
}

/** Answers a request Node hands over with its response (as 'checkExpectation' does), and closes the connection. */
export function endResponseWithProblem(res: ServerResponse, problem: RawProblem): void {
  const { headers, body } = build(problem);
  res.writeHead(problem.status, Object.fromEntries(headers));
  res.end(body);
}

/**
 * One line for each such answer, as the app writes one for every request it answers: the request id, the status,
 * the method when the request line was read and the parser's error code. No header values: none was read, or they
 * may hold credentials.
 */
export function logRawAnswer(
  logger: Logger | undefined,
  answer: { requestId: string; status: number; method?: string; code?: string },
): void {
  if (!logger?.isLevelEnabled('info')) return;
  const { requestId, status, method, code } = answer;
  logger.info(
    {
      reqId: requestId,
      req: method === undefined ? { id: requestId } : { id: requestId, method },
      res: { statusCode: status },
      ...(code === undefined ? {} : { code }),
    },
    'request answered before routing',
  );
}
