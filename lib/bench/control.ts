/**
 * The out-of-band channel between bench server and client: one TCP connection carrying JSON lines (test
 * settings, QP and memory addresses, barriers, results), as perftest exchanges its own over a socket.
 */
import { once } from 'node:events';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';

export interface Message {
  type: string;
  [key: string]: unknown;
}

export class Control {
  readonly #socket: Socket;
  #buffer = '';
  readonly #queue: Message[] = [];
  readonly #waiters: Array<{ resolve: (m: Message) => void; reject: (e: Error) => void }> = [];
  #failure: Error | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#data(chunk));
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('the peer closed the connection')));
  }

  /** Waits for one client on `port` (every address), then stops listening. */
  static async accept(port: number): Promise<Control> {
    const server = createServer();
    server.listen(port);
    await once(server, 'listening');
    try {
      const [socket] = (await once(server, 'connection')) as [Socket];
      return new Control(socket);
    } finally {
      server.close();
    }
  }

  /** Connects, retrying while the server is not listening yet (it may still be starting). */
  static async connect(host: string, port: number, timeoutMs = 15_000): Promise<Control> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const socket = tcpConnect({ host, port });
      try {
        await once(socket, 'connect');
        return new Control(socket);
      } catch (error) {
        socket.destroy();
        const code = (error as NodeJS.ErrnoException).code;
        if ((code !== 'ECONNREFUSED' && code !== 'ECONNRESET') || Date.now() > deadline) {
          throw new Error(`Couldn't connect to ${host}:${port}: ${(error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  send(message: Message): void {
    this.#socket.write(`${JSON.stringify(message)}\n`);
  }

  receive(): Promise<Message> {
    const next = this.#queue.shift();
    if (next) return Promise.resolve(next);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** The next message, which must be of `type`; an 'error' message from the peer becomes an Error. */
  async expect<T extends Message>(type: string): Promise<T> {
    const message = await this.receive();
    if (message.type === 'error') throw new Error(`the peer failed: ${String(message.message)}`);
    if (message.type !== type) throw new Error(`protocol error: expected '${type}' from the peer, got '${message.type}'`);
    return message as T;
  }

  /** Tells the peer why this side gives up (best effort), then closes. */
  fail(error: Error): void {
    if (!this.#failure && !this.#socket.destroyed) this.send({ type: 'error', message: error.message });
    this.close();
  }

  close(): void {
    this.#socket.end();
  }

  #data(chunk: string): void {
    this.#buffer += chunk;
    let newline: number;
    while ((newline = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      let message: Message;
      try {
        message = JSON.parse(line) as Message;
      } catch {
        this.#fail(new Error('protocol error: the peer sent something that is not rdma-node bench JSON'));
        this.#socket.destroy();
        return;
      }
      const waiter = this.#waiters.shift();
      if (waiter) waiter.resolve(message);
      else this.#queue.push(message);
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#failure);
  }
}
