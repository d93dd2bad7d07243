/**
 * How a rank learns that another died: a TCP connection to every other rank, out of band of RDMA (as
 * Gloo and NCCL's bootstrap keep one). The kernel closes a dead process's sockets, so a rank that is
 * SIGKILLed or crashes is seen within a round trip; one that closes its communicator says goodbye first
 * (a byte before FIN) and is not reported. rxe does not report a vanished peer on its own (the sender
 * retries for ever at a retry count of 7, kernel/patches 0005; a receiver hears nothing on any device), so
 * this is what bounds a collective waiting on a dead rank.
 */
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

import { rdmaError } from '../core/errors';

const BYE = 0x42;

export class Liveness {
  readonly #sockets: Socket[] = [];
  /** Higher ranks that connected (possibly before connect() was called), by rank. */
  readonly #accepted = new Map<number, Socket>();
  #onAccept: (() => void) | undefined;
  #closing = false;

  private constructor(readonly server: Server) {
    server.on('connection', (socket) => {
      let head = Buffer.alloc(0);
      const hello = (bytes: Buffer): void => {
        head = Buffer.concat([head, bytes]);
        if (head.length < 4) return;
        socket.off('data', hello);
        if (head.length > 4) socket.unshift(head.subarray(4));
        this.#accepted.set(head.readUInt32BE(0), socket);
        this.#onAccept?.();
      };
      socket.on('data', hello);
      socket.on('error', () => undefined); // 'close' follows
    });
  }

  /** Listens on every address, on any port; `port` is what peers are told. */
  static async listen(): Promise<Liveness> {
    const server = createServer();
    server.listen(0, '0.0.0.0');
    await once(server, 'listening');
    server.unref();
    return new Liveness(server);
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  /**
   * Connects to the lower ranks and takes the connections of the higher ones (each says its rank in 4
   * bytes); `lost(rank)` is called when a peer's connection ends without a goodbye.
   */
  async connect(rank: number, peers: ({ host: string; port: number } | null)[], lost: (rank: number) => void, timeoutMs: number): Promise<void> {
    const size = peers.length;
    const watch = (socket: Socket, peer: number): void => {
      let bye = false;
      socket.on('data', (bytes: Buffer) => (bye ||= bytes.includes(BYE)));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        if (!this.#closing && !bye) lost(peer);
      });
      socket.setNoDelay(true);
      socket.unref();
      this.#sockets.push(socket);
    };
    const higher = size - 1 - rank;
    const accepted = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(rdmaError('communicator', 'ETIMEDOUT', `${higher - this.#accepted.size} higher rank(s) never connected in ${timeoutMs} ms`)), timeoutMs);
      this.#onAccept = () => {
        if (this.#accepted.size < higher) return;
        clearTimeout(timer);
        this.#onAccept = undefined;
        resolve();
      };
      this.#onAccept();
    });
    const connected = peers.slice(0, rank).map(async (address, peer) => {
      const socket = createConnection(address!);
      await once(socket, 'connect');
      const hello = Buffer.alloc(4);
      hello.writeUInt32BE(rank);
      socket.write(hello);
      watch(socket, peer);
    });
    await Promise.all([accepted, ...connected]);
    for (const [peer, socket] of this.#accepted) watch(socket, peer);
    this.server.close();
  }

  /** Closes every connection, after a goodbye unless the peers are to see this rank as lost. */
  close({ goodbye }: { goodbye: boolean }): void {
    if (this.#closing) return;
    this.#closing = true;
    this.server.close();
    for (const socket of [...this.#sockets, ...this.#accepted.values()]) {
      if (goodbye) socket.end(Buffer.from([BYE]));
      else socket.destroy();
    }
  }
}
