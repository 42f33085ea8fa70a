/**
 * Absolute-form request lines (`GET http://127.0.0.1:5000/healthz HTTP/1.1`), which forward proxies send and
 * HTTP/1.1 servers must accept (RFC 9112, 3.2.2). Express routes them by their path, but the contract's validator
 * matched the whole URL, so every operation answered 404 "No operation at GET /healthz" while /openapi.json was
 * served. The request is answered as its origin form (path and query).
 *
 * The authority is the host the request names, so the loopback host check (DNS rebinding, see loopback-host.ts)
 * must see it: a request without `Host` (HTTP/1.0) gets the authority as its `Host`, and one whose `Host` names
 * another host is refused (400 host_mismatch; RFC 9112, 3.2: a client sends a `Host` identical to the authority),
 * so neither name can stand in for the other past the check or in anything that reads `Host` later.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ProblemError } from './problem.js';
import { afterResponsesInFlight, endSocketWithProblem, logRawAnswer, rawRequestId } from './raw-answer.js';

/** `http://` or `https://`, then the authority, up to the path, query or end. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)/i;

/** An authority or `Host` as a URL would write it: lower case, without userinfo or a scheme's default port. */
function normalHost(scheme: string, host: string): string | null {
  try {
    return new URL(`${scheme}//${host}`).host;
  } catch {
    return null;
  }
}

export const originForm: RequestHandler = (req, _res, next) => {
  const target = req.url;
  if (target.startsWith('/')) {
    next();
    return;
  }
  const match = ABSOLUTE_FORM.exec(target);
  if (!match) {
    next();
    return;
  }
  const authority = match[1]!;
  const rest = target.slice(match[0].length);
  const origin = rest.startsWith('/') ? rest : `/${rest}`;
  req.url = origin;
  req.originalUrl = origin;
  const scheme = target.slice(0, target.indexOf('//'));
  const named = normalHost(scheme, authority);
  const host = req.headers.host;
  if (host === undefined && named !== null) {
    req.headers.host = named;
    next();
    return;
  }
  if (named === null || host === undefined || named !== normalHost(scheme, host)) {
    next(
      new ProblemError(
        400,
        `The request line names the host "${authority.slice(0, 100)}" but Host names "${(host ?? '').slice(0, 100)}": send the same host in both, or the path alone on the request line.`,
        { code: 'host_mismatch' },
      ),
    );
    return;
  }
  next();
};

/**
 * A path as the routers match it (Express's and the validator's alike, both case-sensitive, see buildApp): one
 * trailing slash dropped. /healthz/ is GET /healthz; /HEALTHZ, //healthz and /%68ealthz reach no operation. For the
 * checks that run before routing and single out a few paths (the probes): matched exactly, a probe set up as
 * /healthz/ was taken for any other request.
 */
export function routedPath(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * RFC 9112, 3.2: a server answers 400 to an HTTP/1.1 request without Host. Node did so itself (its
 * requireHostHeader, turned off where the service creates its server), with an empty body and none of the
 * service's headers; this answers it as every other bad request is. Mounted before originForm: an absolute-form
 * target does not stand in for Host in HTTP/1.1. HTTP/1.0 needs no Host.
 */
export const requireHost: RequestHandler = (req, _res, next) => {
  if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
    next(new ProblemError(400, 'An HTTP/1.1 request needs a Host header.', { code: 'host_missing' }));
    return;
  }
  next();
};

/**
 * A CONNECT request (authority-form, RFC 9110, 9.3.6) asks for a tunnel, which only a proxy makes. Node hands it
 * to the server's 'connect' listeners, and with none closed the connection without an answer; this answers
 * 405 problem+json naming the methods the service takes, and closes it. Written on the raw socket (raw-answer.ts),
 * so it carries by hand what the app sets on every other answer: the API's security headers and an X-Request-Id
 * (the client's when it is plain, as requestIdFor keeps it, a new one otherwise), which the body repeats as its
 * request_id. The body has no instance: elsewhere that is the request's path, and an authority-form target
 * (`stripe.com:443`) names a host and port, no path of this service (read as a URI reference it would even be the
 * scheme `stripe.com`).
 */
export function refuseConnect(req: IncomingMessage, socket: Duplex, logger?: Logger): void {
  // Node's HTTP server no longer looks after this socket (its error listener is gone too).
  socket.on('error', () => socket.destroy());
  const requestId = rawRequestId(req.headers['x-request-id']);
  // HTTP/1.1 pipelining: requests read before this one are answered first, in order (RFC 9112, 9.3.2); the 405 is
  // written after their answers, unless the last of them closed the connection (`Connection: close`).
  afterResponsesInFlight(
    socket,
    () => true,
    () => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      endSocketWithProblem(socket, {
        status: 405,
        detail: 'CONNECT is not supported: this service is not a proxy.',
        requestId,
        headers: [['Allow', 'GET, HEAD, POST']],
      });
      logRawAnswer(logger, { requestId, status: 405, method: 'CONNECT' });
    },
  );
}
