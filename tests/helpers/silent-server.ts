/**
 * A TCP server that takes every connection and never says a word: a server or a path gone silent after the TCP
 * handshake (a RabbitMQ or PostgreSQL that hangs, a proxy whose upstream is gone).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface SilentServer {
  readonly port: number;
  /** The connections still open, as this side sees them. */
  readonly sockets: ReadonlySet<Socket>;
  /** How many connections it has taken so far. */
  accepted(): number;
  close(): Promise<void>;
}

export async function silentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    // Reads what the client sends, and throws it away: unread, it would hold back the end of the stream, and a
    // client that hangs up would never be seen to.
    socket.resume();
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
