import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

// A caller-supplied id is reused only when it is short and plain, so it cannot smuggle log or header injection,
// and is not `.` or `..`: the rule a refund's request_id follows too (a URL path cannot carry those two as a
// segment: clients and proxies remove dot-segments, so GET /refund-status/.. could never reach its refund).
const SAFE_ID = /^(?!\.\.?$)[A-Za-z0-9._:-]{1,128}$/;

/** Whether `id` is a request id as requestIdFor keeps one (also the check on one a queued message carries). */
export function isPlainRequestId(id: unknown): id is string {
  return typeof id === 'string' && SAFE_ID.test(id);
}

export function requestIdFor(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = isPlainRequestId(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}
