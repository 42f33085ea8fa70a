/**
 * A TCP proxy a test puts between a client and a real service, to play a network path that goes silent:
 * in black-hole mode it keeps every socket open and forwards nothing (bytes sent meanwhile are lost, as on a
 * path that drops packets without a reset), and new connections are accepted but get nothing either.
 */
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** Stop forwarding in both directions; sockets stay open. */
  blackHole(): void;
  /** Forward again (what was sent while black-holed is gone). */
  forward(): void;
  /**
   * From now on, a connection whose client sends bytes containing `marker` goes silent at that point, in both
   * directions, for good (one statement of a protocol swallowed on the way); `null` stops matching.
   */
  silenceConnectionsSending(marker: string | null): void;
  /**
   * From now on, a connection whose client sends bytes containing `marker` forwards those bytes and then goes
   * silent, in both directions, for good: the server does the work (a statement commits) and its answer is lost on
   * the way back; `null` stops matching.
   */
  loseAnswersTo(marker: string | null): void;
  /**
   * As loseAnswersTo, for the first bytes containing `marker` that a connection sends after bytes containing
   * `after` (in an earlier chunk): e.g. the `commit` of the transaction that wrote a given payment intent's refund,
   * so the transaction commits and its answer is lost. `null` stops matching.
   */
  loseAnswersAfter(after: string | null, marker: string): void;
  /** Holds what the client sends this long before forwarding it (a slow database); 0 forwards at once. */
  delayClientBytes(ms: number): void;
  close(): Promise<void>;
}

/** `port`: listen there (a proxy started again where a closed one was, as a service coming back); any by default. */
export async function startTcpProxy(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let silent = false;
  let marker: string | null = null;
  let answerMarker: string | null = null;
  let laterMarker: { after: string; marker: string } | null = null;
  let delayMs = 0;
  const server = createServer((client) => {
    const upstream = tcpConnect(target.port, target.host);
    let swallowed = false;
    let sawAfter = false;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (chunk: Buffer) => {
      if (marker !== null && chunk.includes(marker)) swallowed = true;
      if (silent || swallowed) return;
      if (delayMs > 0) setTimeout(() => upstream.write(chunk), delayMs);
      else upstream.write(chunk);
      if (answerMarker !== null && chunk.includes(answerMarker)) swallowed = true;
      if (laterMarker !== null) {
        if (sawAfter && chunk.includes(laterMarker.marker)) swallowed = true;
        if (chunk.includes(laterMarker.after)) sawAfter = true;
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!silent && !swallowed) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    blackHole() {
      silent = true;
    },
    forward() {
      silent = false;
    },
    silenceConnectionsSending(m) {
      marker = m;
    },
    loseAnswersTo(m) {
      answerMarker = m;
    },
    loseAnswersAfter(after, m) {
      laterMarker = after === null ? null : { after, marker: m };
    },
    delayClientBytes(ms) {
      delayMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A proxy in front of the server `url` names, and the same URL pointed at the proxy instead. */
export async function proxyFor(url: string): Promise<{ proxy: TcpProxy; url: string }> {
  const target = new URL(url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const viaProxy = new URL(url);
  viaProxy.hostname = proxy.host;
  viaProxy.port = String(proxy.port);
  return { proxy, url: viaProxy.toString() };
}
