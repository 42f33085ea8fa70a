/**
 * Admission control: at most `max` requests at work at once; the others are answered 503 `overloaded` with
 * Retry-After before their body is read.
 *
 * A request's work is what it holds: its heap, and a socket to Stripe or a place in the database pool's queue.
 * It counts from arrival until its response is closed and, when a handler ran, until that handler has finished:
 * a request the timeout answered (or whose client went away) still has its Stripe call running, and a client
 * retrying after its 503 would otherwise start a second call beside the first, and so on. Without the cap a few
 * thousand clients against a slow Stripe exhausted the heap and the process was killed with all its work.
 */
import type { Request, RequestHandler } from 'express';
import { sendProblem } from './errors.js';
import { problemBody } from './problem.js';
import { routedPath } from './request-target.js';

const HOLD = Symbol('admission.hold');

type Admitted = Request & { [HOLD]?: () => () => void };

export interface Admission {
  readonly middleware: RequestHandler;
  /** Requests at work now. */
  inFlight(): number;
}

const RETRY_AFTER_S = 1;
const SERVICE_FULL = 'The service is at its limit of requests in progress. Retry shortly.';
const CLIENT_FULL = 'This client is at its limit of requests in progress. Retry shortly.';

/**
 * A share of the cap per client: at most `max` of the requests at work come from one `keyOf(req)` (a request it
 * gives no key for has no share to keep to).
 */
export interface PerClientCap {
  readonly max: number;
  readonly keyOf: (req: Request) => string | undefined;
  /** The refusal's detail when a client holds its share (by default: this client is at its limit). */
  readonly detail?: string;
}

export interface AdmissionOptions {
  /** One client has at most its share, so it cannot take all `max` places from the others. */
  readonly perClient?: PerClientCap;
  /** The refusal's detail when all `max` places are taken (by default the service's own limit). */
  readonly fullDetail?: string;
}

interface Counts {
  inFlight: number;
  readonly byClient: Map<string, number>;
}

/**
 * One request's place under a cap, taken when it is made. Its response's 'close' releases it, and so does each
 * hold (a handler's work) when it ends: the place is left once all have. A class rather than closures made for
 * each request: the bundle names every such closure (esbuild's keepNames), a defineProperty each.
 */
class Place {
  #holds = 1;
  constructor(
    private readonly counts: Counts,
    private readonly client: string | undefined,
  ) {
    this.#enter();
  }

  #enter(): void {
    this.counts.inFlight++;
    const { client, counts } = this;
    if (client !== undefined) counts.byClient.set(client, (counts.byClient.get(client) ?? 0) + 1);
  }

  #leave(): void {
    this.counts.inFlight--;
    const { client, counts } = this;
    if (client === undefined) return;
    const left = (counts.byClient.get(client) ?? 1) - 1;
    if (left === 0) counts.byClient.delete(client);
    else counts.byClient.set(client, left);
  }

  release(): void {
    if (--this.#holds === 0) this.#leave();
  }

  /** Holds the place (and the outer caps' `outer` gives) until the returned function is called. */
  hold(outer: (() => () => void) | undefined): () => void {
    const releaseOuter = outer?.();
    // A handler starting after the answer went out counts again for as long as it runs.
    if (this.#holds++ === 0) this.#enter();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release();
      releaseOuter?.();
    };
  }
}

/**
 * `max` 0 is no cap on all requests together (then only `perClient` shares, if any, are kept to). Paths in `exempt`
 * (the probes, a metrics scrape) are always admitted and not counted: an orchestrator must see a busy process as
 * alive, not restart it and lose its work. Caps can be passed one after the other (a share of some requests, then
 * all requests): a request holds a place in each.
 */
export function admission(
  max: number,
  exempt: ReadonlySet<string>,
  { perClient, fullDetail = SERVICE_FULL }: AdmissionOptions = {},
): Admission {
  const counts: Counts = { inFlight: 0, byClient: new Map() };
  const middleware: RequestHandler = (req, res, next) => {
    // As routed: a probe set up as /healthz/ is GET /healthz, and was refused 503 under load.
    // A request answered (by the timeout) or given up by its client before it got here, while its key was looked
    // up, is not run: counted, it would hold its place for good, its 'close' being already past.
    if (
      (max <= 0 && !perClient) ||
      exempt.has(routedPath(req.path)) ||
      res.headersSent ||
      req.socket.destroyed
    ) {
      next();
      return;
    }
    const client = perClient?.keyOf(req);
    const full = max > 0 && counts.inFlight >= max;
    if (full || (client !== undefined && (counts.byClient.get(client) ?? 0) >= perClient!.max)) {
      sendProblem(res, {
        status: 503,
        body: problemBody(503, {
          detail: full ? fullDetail : (perClient?.detail ?? CLIENT_FULL),
          instance: req.path,
          requestId: String(req.id),
          code: 'overloaded',
          retry_after: RETRY_AFTER_S,
        }),
        headers: { 'Retry-After': String(RETRY_AFTER_S) },
      });
      return;
    }
    const place = new Place(counts, client);
    // A request can pass more than one cap (all requests, then webhooks): a hold holds it in each.
    const outer = (req as Admitted)[HOLD];
    (req as Admitted)[HOLD] = () => place.hold(outer);
    res.on('close', () => place.release()); // emitted once (see request-log.ts)
    next();
  };
  return { middleware, inFlight: () => counts.inFlight };
}

/** Keeps the request counted until the returned function is called (a handler's work). */
export function holdWork(req: Request): () => void {
  return (req as Admitted)[HOLD]?.() ?? (() => undefined);
}
