/**
 * HEAD is a GET without the body (RFC 9110, 9.3.2), and uptime monitors probe with it; the contract lists GETs
 * only, so the validator answered HEAD /healthz with 405. A HEAD is routed as a GET (Node leaves the body out of its
 * answer itself), and remembers that it was one, so that what is said about the request names the method the client
 * sent: HEAD /refund is "HEAD is not allowed on /refund.", not GET.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';

const SENT_AS_HEAD = Symbol('request.sentAsHead');

type Marked = IncomingMessage & { [SENT_AS_HEAD]?: true };

export const routeHeadAsGet: RequestHandler = (req, _res, next) => {
  if (req.method === 'HEAD') {
    req.method = 'GET';
    (req as Marked)[SENT_AS_HEAD] = true;
  }
  next();
};

/** The method the client sent: HEAD for a HEAD that routeHeadAsGet routes as a GET. */
export function methodAsSent(req: IncomingMessage): string {
  return (req as Marked)[SENT_AS_HEAD] ? 'HEAD' : (req.method ?? '');
}
