/** A client that sends a request's body slowly, to hold a place under MAX_CONCURRENT_REQUESTS. */
import { connect } from 'node:net';

/**
 * Sends the service at `url` a POST of `path` whose head announces a 1,000-byte JSON body, and 10 bytes of it, then
 * nothing: `head` resolves with the answer's head (and `answered` turns true), if one comes while the rest of the
 * body is never sent.
 */
export function slowPost(
  url: string,
  path: string,
  headers: string[] = [],
): { head: Promise<string>; answered(): boolean; close(): void } {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  let done = false;
  const head = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text.slice(0, text.indexOf('\r\n\r\n')));
    });
    socket.on('close', () => resolve(text));
  }).finally(() => (done = true));
  socket.on('connect', () => {
    socket.write(
      [
        `POST ${path} HTTP/1.1`,
        'Host: 127.0.0.1',
        'Content-Type: application/json',
        'Content-Length: 1000',
        ...headers,
        '',
        '',
      ].join('\r\n'),
    );
    socket.write('{"amount":');
  });
  return { head, answered: () => done, close: () => socket.destroy() };
}
