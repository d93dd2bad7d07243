/**
 * Bootstrap without PMIx, as NCCL's: a root at an address every rank knows (the launcher, or rank 0 at
 * RDMA_NODE_BOOTSTRAP), where each rank registers the address of its own listener; once all have, the root
 * sends every rank the table and leaves. The ranks then connect in a ring (each to the next) and exchange
 * along it: allgather passes each rank's bytes on size − 1 times. Over TCP, out of band of RDMA.
 *
 * The root waits `timeoutMs` for all ranks and then tells those that came which never did; a ring peer that
 * goes away fails every exchange in progress and later. Messages to and from the root are JSON lines; on the
 * ring, frames of a 4-byte length and the bytes.
 */
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface RankAddress {
  rank: number;
  address: string;
  hostname: string;
}

export interface RendezvousRoot {
  /** host:port the ranks register at. */
  readonly address: string;
  close(): void;
}

/** Serves the root for `size` ranks on `host` (default loopback) and `port` (default any), once listening. */
export async function serveRendezvous(size: number, { host = '127.0.0.1', port = 0, timeoutMs = 60_000 } = {}): Promise<RendezvousRoot> {
  const server = createServer();
  const waiting = new Map<number, Socket>();
  const table: RankAddress[] = [];
  const fail = (message: string): void => {
    for (const socket of waiting.values()) socket.end(`${JSON.stringify({ error: message })}\n`);
    waiting.clear();
    server.close();
  };
  const timer = setTimeout(() => {
    const missing = Array.from({ length: size }, (_, rank) => rank).filter((rank) => !waiting.has(rank));
    fail(`rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} never arrived at the rendezvous (waited ${timeoutMs} ms for ${size})`);
  }, timeoutMs);
  timer.unref();
  server.on('connection', (socket) => {
    socket.setEncoding('utf8');
    let text = '';
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (!text.includes('\n')) return;
      const hello = JSON.parse(text.slice(0, text.indexOf('\n'))) as RankAddress & { size: number };
      if (hello.size !== size || !(hello.rank >= 0 && hello.rank < size) || waiting.has(hello.rank)) {
        socket.end(`${JSON.stringify({ error: `rank ${hello.rank} of ${hello.size} does not fit a job of ${size} ranks (or came twice)` })}\n`);
        return;
      }
      waiting.set(hello.rank, socket);
      table[hello.rank] = { rank: hello.rank, address: hello.address, hostname: hello.hostname };
      if (waiting.size < size) return;
      clearTimeout(timer);
      for (const peer of waiting.values()) peer.end(`${JSON.stringify({ ranks: table })}\n`);
      waiting.clear();
      server.close();
    });
  });
  server.listen(port, host);
  server.unref();
  await once(server, 'listening');
  return {
    address: `${host}:${(server.address() as { port: number }).port}`,
    close() {
      clearTimeout(timer);
      fail('the job is ending');
    },
  };
}

export class BootstrapError extends Error {
  override name = 'BootstrapError';
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

/** Connects to `address`, retrying while nothing listens there yet, until `deadline`. */
async function connectBy(address: string, deadline: number): Promise<Socket> {
  for (;;) {
    const socket = createConnection(splitAddress(address));
    try {
      await once(socket, 'connect');
      return socket;
    } catch (error) {
      socket.destroy();
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() > deadline) {
        throw new BootstrapError(`cannot reach the rendezvous at ${address}: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Length-prefixed frames from a socket, in order. */
class Frames {
  #buffer = Buffer.alloc(0);
  #frames: Buffer[] = [];
  #waiting: { resolve(frame: Buffer): void; reject(error: Error): void }[] = [];
  #error: Error | undefined;

  constructor(socket: Socket, what: string) {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= 4 && this.#buffer.length >= 4 + this.#buffer.readUInt32BE(0)) {
        const length = this.#buffer.readUInt32BE(0);
        const frame = this.#buffer.subarray(4, 4 + length);
        this.#buffer = this.#buffer.subarray(4 + length);
        const waiter = this.#waiting.shift();
        if (waiter) waiter.resolve(frame);
        else this.#frames.push(frame);
      }
    });
    const gone = (): void => this.fail(new BootstrapError(`${what} went away`));
    socket.on('close', gone);
    socket.on('error', gone);
  }

  fail(error: Error): void {
    this.#error ??= error;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(this.#error);
  }

  next(): Promise<Buffer> {
    const frame = this.#frames.shift();
    if (frame) return Promise.resolve(frame);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }
}

function frame(bytes: Uint8Array): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(bytes.length);
  return Buffer.concat([header, bytes]);
}

export interface RingOptions {
  rank: number;
  size: number;
  hostname: string;
  /** The root's host:port. */
  root: string;
  /** Serve the root here (rank 0 under a launcher that has none, as NCCL's bootstrap root). */
  serveRoot?: boolean;
  timeoutMs: number;
}

/** The ranks joined in a ring: out-of-band allgather and barrier. */
export class Ring {
  readonly table: RankAddress[];
  #next: Socket | undefined;
  #previous: Frames | undefined;
  #server: Server;
  #previousSocket: Socket | undefined;
  #nextGone: Error | undefined;
  #exchange: Promise<unknown> = Promise.resolve();

  private constructor(readonly rank: number, table: RankAddress[], server: Server, next?: Socket, previous?: Socket) {
    this.table = table;
    this.#server = server;
    this.#next = next;
    this.#previousSocket = previous;
    if (next && previous) {
      const size = table.length;
      this.#previous = new Frames(previous, `rank ${(rank - 1 + size) % size}`);
      // The next rank leaving matters to the next write only: having received everything, it may close
      // while this rank still waits for the last frame from the previous one.
      const gone = (): void => void (this.#nextGone ??= new BootstrapError(`rank ${(rank + 1) % size} went away`));
      next.on('error', gone);
      next.on('close', gone);
    }
  }

  static async join(options: RingOptions): Promise<Ring> {
    const { rank, size, timeoutMs } = options;
    const deadline = Date.now() + timeoutMs;
    const root = options.serveRoot ? await serveRendezvous(size, { host: '0.0.0.0', port: splitAddress(options.root).port, timeoutMs }) : undefined;
    const server = createServer();
    server.listen(0, '0.0.0.0');
    await once(server, 'listening');
    const accepted = size > 1 ? once(server, 'connection') : Promise.resolve([undefined]);
    try {
      const toRoot = await connectBy(options.root, deadline);
      const port = (server.address() as { port: number }).port;
      toRoot.write(`${JSON.stringify({ rank, size, address: `${toRoot.localAddress}:${port}`, hostname: options.hostname })}\n`);
      toRoot.setEncoding('utf8');
      let reply = '';
      toRoot.on('data', (chunk: string) => (reply += chunk));
      const ended = once(toRoot, 'close');
      const timer = setTimeout(() => toRoot.destroy(), Math.max(deadline - Date.now(), 0));
      await ended;
      clearTimeout(timer);
      if (!reply.includes('\n')) throw new BootstrapError(`the rendezvous at ${options.root} gave no table within ${timeoutMs} ms`);
      const answer = JSON.parse(reply.slice(0, reply.indexOf('\n'))) as { ranks?: RankAddress[]; error?: string };
      if (answer.error !== undefined) throw new BootstrapError(answer.error);
      const table = answer.ranks!;
      if (size === 1) return new Ring(rank, table, server);
      const next = await connectBy(table[(rank + 1) % size]!.address, deadline);
      next.setNoDelay(true);
      const [previous] = (await accepted) as [Socket];
      previous.setNoDelay(true);
      return new Ring(rank, table, server, next, previous);
    } catch (error) {
      server.close();
      throw error;
    } finally {
      root?.close();
    }
  }

  /** Every rank's bytes, in rank order (each rank passes on what it got, size − 1 steps). */
  allgather(bytes: Uint8Array): Promise<Buffer[]> {
    const run = this.#exchange.then(async () => {
      const { rank } = this;
      const size = this.table.length;
      const all: Buffer[] = new Array<Buffer>(size);
      all[rank] = Buffer.from(bytes);
      for (let step = 0; step < size - 1; step++) {
        if (this.#nextGone) throw this.#nextGone;
        this.#next!.write(frame(all[(rank - step + size) % size]!));
        all[(rank - step - 1 + size) % size] = await this.#previous!.next();
      }
      return all;
    });
    this.#exchange = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.#previous?.fail(new BootstrapError('the job was closed'));
    this.#next?.destroy();
    this.#previousSocket?.destroy();
    this.#server.close();
  }
}
