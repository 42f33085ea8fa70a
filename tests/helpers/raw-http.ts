/** Raw HTTP on a socket, for what fetch refuses to send: unparsable bytes, CONNECT, pipelined requests. */
import { connect } from 'node:net';

/**
 * Sends `bytes` (latin1) to the service at `url` and answers everything it wrote, and whether it closed the
 * connection: until it did, or 5 s passed (then `closed` is false).
 */
export function sendRawUntilClosed(url: string, bytes: string): Promise<{ data: string; closed: boolean }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(bytes, 'latin1'));
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('end', () => resolve({ data, closed: true }));
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve({ data, closed: false });
    });
  });
}

/** Sends raw bytes and answers everything the server wrote until it closed the connection (or 5 s passed). */
export async function sendRaw(url: string, bytes: string): Promise<string> {
  return (await sendRawUntilClosed(url, bytes)).data;
}
