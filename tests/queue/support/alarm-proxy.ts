/**
 * A TCP proxy to RabbitMQ that plays a resource alarm (memory, disk) on the connections through it. RabbitMQ is
 * shared, so a real alarm (`rabbitmqctl set_vm_memory_high_watermark`) would stop every other test's publishers.
 *
 * During the alarm the proxy stops forwarding what a blocked connection sends (as RabbitMQ stops reading it) and
 * injects connection.blocked / connection.unblocked frames at frame boundaries. Which connections it blocks:
 * - `all` (the default): every connection through it, at once;
 * - `publishers`: as RabbitMQ does, only a connection that publishes (basic.publish) while the alarm lasts, from
 *   that publish on; a connection that only consumes, acks and declares goes on as usual.
 */
import { createServer, connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net';

function methodFrame(classId: number, methodId: number, args: Buffer): Buffer {
  const payload = Buffer.concat([
    Buffer.from([classId >> 8, classId & 255, methodId >> 8, methodId & 255]),
    args,
  ]);
  const header = Buffer.alloc(7);
  header.writeUInt8(1, 0); // method frame
  header.writeUInt16BE(0, 1); // channel 0
  header.writeUInt32BE(payload.length, 3);
  return Buffer.concat([header, payload, Buffer.from([0xce])]);
}

const BLOCKED = methodFrame(10, 60, Buffer.concat([Buffer.from([13]), Buffer.from('low on memory')]));
const UNBLOCKED = methodFrame(10, 61, Buffer.alloc(0));
/** AMQP 0-9-1's protocol header, the first thing a client sends, before any frame. */
const PROTOCOL_HEADER_SIZE = 8;

function isBasicPublish(frame: Buffer): boolean {
  return frame.length >= 11 && frame[0] === 1 && frame.readUInt16BE(7) === 60 && frame.readUInt16BE(9) === 40;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** RabbitMQ stopped reading it: what it sends is held until the alarm ends. */
  blocked: boolean;
  held: Buffer[];
  inject(frame: Buffer): void;
}

export interface AlarmProxy {
  url: string;
  block(): void;
  unblock(): void;
  /** How many connections through the proxy are blocked now. */
  blockedConnections(): number;
  close(): Promise<void>;
}

export async function alarmProxy(
  target: URL,
  opts: { blocks?: 'all' | 'publishers' } = {},
): Promise<AlarmProxy> {
  const mode = opts.blocks ?? 'all';
  const pairs: Pair[] = [];
  let alarm = false;
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port || 5672), target.hostname);
    // Server → client: forwarded frame by frame, so a frame can be injected between two.
    let pending = Buffer.alloc(0);
    const queued: Buffer[] = [];
    const pair: Pair = {
      client,
      upstream,
      // In `all` mode a connection opened during the alarm is not read either (it is told nothing).
      blocked: mode === 'all' && alarm,
      held: [],
      inject(frame: Buffer) {
        if (pending.length === 0) client.write(frame);
        else queued.push(frame);
      },
    };
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 7) {
        const size = pending.readUInt32BE(3);
        if (pending.length < 7 + size + 1) break;
        client.write(pending.subarray(0, 8 + size));
        pending = pending.subarray(8 + size);
        if (pending.length === 0) for (const f of queued.splice(0)) client.write(f);
      }
    });
    // Client → server: in `publishers` mode read frame by frame, to block the connection at its first publish.
    let headerLeft = PROTOCOL_HEADER_SIZE;
    let sent = Buffer.alloc(0);
    const forward = (bytes: Buffer) => {
      if (pair.blocked) pair.held.push(bytes);
      else upstream.write(bytes);
    };
    client.on('data', (chunk: Buffer) => {
      if (mode === 'all') {
        forward(chunk);
        return;
      }
      let rest = chunk;
      if (headerLeft > 0) {
        const header = rest.subarray(0, headerLeft);
        headerLeft -= header.length;
        forward(header);
        rest = rest.subarray(header.length);
      }
      sent = Buffer.concat([sent, rest]);
      while (sent.length >= 7) {
        const size = sent.readUInt32BE(3);
        if (sent.length < 7 + size + 1) break;
        const frame = sent.subarray(0, 8 + size);
        sent = sent.subarray(8 + size);
        if (isBasicPublish(frame) && alarm && !pair.blocked) {
          pair.blocked = true;
          pair.inject(BLOCKED);
        }
        forward(frame);
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    pairs.push(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `amqp://${target.username}:${target.password}@127.0.0.1:${port}`,
    block() {
      alarm = true;
      if (mode === 'publishers') return;
      for (const p of pairs) {
        p.blocked = true;
        p.inject(BLOCKED);
      }
    },
    unblock() {
      alarm = false;
      for (const p of pairs) {
        if (!p.blocked) continue;
        p.blocked = false;
        for (const chunk of p.held.splice(0)) p.upstream.write(chunk);
        p.inject(UNBLOCKED);
      }
    },
    blockedConnections: () => pairs.filter((p) => p.blocked && !p.client.destroyed).length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of pairs) p.client.destroy();
        server.close(() => resolve());
      }),
  };
}
