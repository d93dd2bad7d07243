/**
 * Verified traffic for the load test and the soak: RC SENDs over many raw verbs connections sharing one
 * CQ, and echo round trips over endpoints. Every byte is checked where it arrives, against what the
 * sender made from a seed both sides know. A completion that never comes is reported, naming the
 * connection and the messages still missing, once the CQ has been silent for `stallMs` (a bound on
 * silence, not on speed): never a hang, and nothing is retried or posted again to cover it.
 */
import { QpState, WcStatus, WrOpcode } from '../../verbs/constants';
import { CompletionBatch } from '../../verbs/completion';
import type { CompletionQueue } from '../../verbs/cq';
import type { MemoryRegion } from '../../verbs/mr';
import type { ProtectionDomain } from '../../verbs/pd';
import type { QueuePair } from '../../verbs/qp/qp';
import type { Endpoint } from '../../endpoint/endpoint';

const HEADER = 12; // u32 seed, u32 message index, u32 length
const TAPE = 16 << 10;

/** xorshift32: reproducible 32-bit numbers from a seed. */
export function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/** The same tape of bytes for the same seed on both sides. */
function tape(seed: number, length: number): Buffer {
  const next = xorshift32(seed ^ 0x9e3779b9);
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = next() & 0xff;
  return out;
}

const mix = (seed: number, i: number): number => {
  let h = Math.imul(seed ^ Math.imul(i, 0x85ebca6b), 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return Math.imul(h, 0x27d4eb2d) >>> 0;
};

/** Message `i` of the stream `seed`: its length (HEADER..maxSize) and bytes. */
export class Stream {
  readonly #tape: Buffer;

  constructor(readonly seed: number, readonly maxSize: number) {
    if (maxSize < HEADER) throw new RangeError(`messages are at least ${HEADER} bytes`);
    this.#tape = tape(seed, TAPE + maxSize);
  }

  length(i: number): number {
    return HEADER + (mix(this.seed, i) % (this.maxSize - HEADER + 1));
  }

  /** Writes message i into `into` (at least length(i) bytes); returns its length. */
  fill(i: number, bytes: Uint8Array): number {
    const into = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const length = this.length(i);
    into.writeUInt32LE(this.seed, 0);
    into.writeUInt32LE(i >>> 0, 4);
    into.writeUInt32LE(length, 8);
    const at = mix(this.seed ^ 0x5bd1e995, i) % TAPE;
    this.#tape.copy(into, HEADER, at, at + length - HEADER);
    return length;
  }

  message(i: number): Buffer {
    const out = Buffer.alloc(this.length(i));
    this.fill(i, out);
    return out;
  }

  /** undefined when `got` is message i exactly, else what is wrong with it. */
  check(i: number, bytes: Uint8Array): string | undefined {
    const got = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const want = this.message(i);
    if (got.length !== want.length) {
      const header = got.length >= HEADER ? ` (its header: stream ${got.readUInt32LE(0)}, message ${got.readUInt32LE(4)}, ${got.readUInt32LE(8)} bytes)` : '';
      return `${got.length} bytes where ${want.length} were sent${header}`;
    }
    if (got.equals(want)) return undefined;
    let differ = 0;
    let first = -1;
    for (let k = 0; k < want.length; k++) {
      if (got[k] !== want[k]) {
        differ++;
        if (first < 0) first = k;
      }
    }
    return `${differ} of ${want.length} bytes differ (first at byte ${first}; header says stream ${got.readUInt32LE(0)}, message ${got.readUInt32LE(4)})`;
  }
}

export interface RcConnection {
  /** Connected (RTS) RC QP whose send and receive CQ is the traffic's CQ. */
  qp: QueuePair;
  /** For reports: which connection this is, e.g. "rank 3 qp 17 → rank 2". */
  name: string;
  /** Seeds of the streams this side sends and the peer sends (both sides agree on them). */
  sendSeed: number;
  recvSeed: number;
}

export interface RcTrafficOptions {
  /** Messages each side sends on each connection. */
  messages: number;
  /** Sends in flight and receives posted per connection (default 8). */
  window?: number;
  /** Largest message (default 4096). */
  maxSize?: number;
  /** Silence of the CQ, with work outstanding, after which what is missing is reported (default 60 s). */
  stallMs?: number;
  /** Message indices start here (a connection can carry several rounds). */
  first?: number;
}

export interface RcTrafficResult {
  /** Sends that completed successfully. */
  sent: number;
  /** Messages received and found intact, and their bytes. */
  received: number;
  bytes: number;
  /** Every wrong byte, failed completion and missing completion, one line each. */
  failures: string[];
  /** After abort(): work requests that ended in error or were flushed (not failures: the peer was gone). */
  interrupted: number;
  /** After abort(): sends still not completed once the CQ had been silent for stallMs (then flushed). */
  sendsNeverFailed: number;
}

interface ConnectionState {
  connection: RcConnection;
  sendStream: Stream;
  recvStream: Stream;
  /** Next message to post, and the message each send slot carries (-1: free). */
  nextSend: number;
  slotMessage: number[];
  freeSlots: number[];
  /** Receives posted and not completed, oldest first (their slots); next message expected. */
  recvPosted: number[];
  nextRecv: number;
  recvToPost: number;
}

/**
 * Verified SENDs both ways over `connections`, all on one CQ (which must hold connections × 2 × window
 * completions). run() posts every receive first; start sends when the peer has posted its own (or rely on
 * the RNR retry the QPs were connected with).
 */
export class RcTraffic {
  readonly #cq: CompletionQueue;
  readonly #states: ConnectionState[];
  readonly #window: number;
  readonly #maxSize: number;
  readonly #stallMs: number;
  readonly #last: number;
  readonly #sendMr: MemoryRegion;
  readonly #recvMr: MemoryRegion;
  readonly #result: RcTrafficResult = { sent: 0, received: 0, bytes: 0, failures: [], interrupted: 0, sendsNeverFailed: 0 };
  #aborted = false;
  #posted = false;

  constructor(pd: ProtectionDomain, cq: CompletionQueue, connections: RcConnection[], options: RcTrafficOptions) {
    this.#cq = cq;
    this.#window = options.window ?? 8;
    this.#maxSize = options.maxSize ?? 4096;
    this.#stallMs = options.stallMs ?? 60_000;
    const first = options.first ?? 0;
    this.#last = first + options.messages;
    const slots = connections.length * this.#window;
    this.#sendMr = pd.registerMemory(Buffer.alloc(slots * this.#maxSize));
    this.#recvMr = pd.registerMemory(Buffer.alloc(slots * this.#maxSize));
    this.#states = connections.map((connection) => ({
      connection,
      sendStream: new Stream(connection.sendSeed, this.#maxSize),
      recvStream: new Stream(connection.recvSeed, this.#maxSize),
      nextSend: first,
      slotMessage: new Array<number>(this.#window).fill(-1),
      freeSlots: Array.from({ length: this.#window }, (_, s) => s),
      recvPosted: [],
      nextRecv: first,
      recvToPost: options.messages,
    }));
  }

  get result(): RcTrafficResult {
    return this.#result;
  }

  // wrId: ((connection × window + slot) × 2) + (1 for a receive)
  #slotOffset(c: number, slot: number): number {
    return (c * this.#window + slot) * this.#maxSize;
  }

  /** Posts every connection's receives (up to the window). Called by run() if not called before. */
  postReceives(): void {
    if (this.#posted) return;
    this.#posted = true;
    this.#states.forEach((state, c) => {
      for (let slot = 0; slot < this.#window && state.recvToPost > 0; slot++) this.#postRecv(c, slot);
    });
  }

  #postRecv(c: number, slot: number): void {
    const state = this.#states[c]!;
    state.connection.qp.postRecv({ wrId: (c * this.#window + slot) * 2 + 1, sgList: [{ mr: this.#recvMr, offset: this.#slotOffset(c, slot), length: this.#maxSize }] });
    state.recvPosted.push(slot);
    state.recvToPost--;
  }

  #postSends(c: number): void {
    const state = this.#states[c]!;
    const list = [];
    while (state.freeSlots.length > 0 && state.nextSend < this.#last && !this.#aborted) {
      const slot = state.freeSlots.shift()!;
      const i = state.nextSend++;
      const offset = this.#slotOffset(c, slot);
      const length = state.sendStream.fill(i, this.#sendMr.bytes.subarray(offset, offset + this.#maxSize));
      state.slotMessage[slot] = i;
      list.push({ wrId: (c * this.#window + slot) * 2, opcode: WrOpcode.SEND, sgList: [{ mr: this.#sendMr, offset, length }] });
    }
    if (list.length > 0) state.connection.qp.postSend(list);
  }

  /** Sends in flight and receives still expected, over every connection. */
  #outstanding(): number {
    return this.#states.reduce((n, s) => n + s.slotMessage.filter((m) => m >= 0).length + (this.#aborted ? s.recvPosted.length : this.#last - s.nextRecv), 0);
  }

  /** What is missing on each connection, one line each (for the report of a stall). */
  missing(): string[] {
    const lines: string[] = [];
    for (const state of this.#states) {
      const sends = state.slotMessage.filter((m) => m >= 0).sort((a, b) => a - b);
      const receives = this.#aborted ? state.recvPosted.length : this.#last - state.nextRecv;
      if (sends.length === 0 && receives === 0) continue;
      const parts: string[] = [];
      if (sends.length > 0) parts.push(`send${sends.length > 1 ? 's' : ''} of message${sends.length > 1 ? 's' : ''} ${sends.join(', ')} posted, never completed`);
      if (receives > 0) parts.push(this.#aborted ? `${receives} posted receive${receives > 1 ? 's' : ''} not completed` : `message${receives > 1 ? 's' : ''} ${state.nextRecv}${receives > 1 ? `..${this.#last - 1}` : ''} never received`);
      lines.push(`${state.connection.name}: ${parts.join('; ')}`);
    }
    return lines;
  }

  #complete(batch: CompletionBatch): void {
    for (let k = 0; k < batch.count; k++) {
      const id = batch.wrIdNumber(k);
      const isRecv = id % 2 === 1;
      const c = Math.floor(id / 2 / this.#window);
      const slot = Math.floor(id / 2) % this.#window;
      const state = this.#states[c];
      const status = batch.status(k);
      if (state === undefined) {
        this.#result.failures.push(`a completion with an unknown work request id ${id}`);
        continue;
      }
      const name = state.connection.name;
      if (!isRecv) {
        const i = state.slotMessage[slot]!;
        state.slotMessage[slot] = -1;
        state.freeSlots.push(slot);
        if (status === WcStatus.SUCCESS) this.#result.sent++;
        else if (this.#aborted) this.#result.interrupted++;
        else this.#result.failures.push(`${name}: send of message ${i} completed with ${WcStatus[status] ?? status}`);
        if (i < 0) this.#result.failures.push(`${name}: a second completion for send slot ${slot}`);
        continue;
      }
      const expected = state.recvPosted.shift();
      if (expected !== slot) this.#result.failures.push(`${name}: receive completed in slot ${slot} where slot ${expected} was next (out of order)`);
      const i = state.nextRecv++;
      if (status !== WcStatus.SUCCESS) {
        if (this.#aborted) this.#result.interrupted++;
        else this.#result.failures.push(`${name}: receive of message ${i} completed with ${WcStatus[status] ?? status}`);
        continue;
      }
      const offset = this.#slotOffset(c, slot);
      const wrong = state.recvStream.check(i, this.#recvMr.bytes.subarray(offset, offset + batch.byteLen(k)));
      if (wrong === undefined) {
        this.#result.received++;
        this.#result.bytes += batch.byteLen(k);
      } else {
        this.#result.failures.push(`${name}: message ${i}: ${wrong}`);
      }
      if (state.recvToPost > 0 && !this.#aborted) this.#postRecv(c, slot);
    }
  }

  /** Polls until `outstanding` is 0 or the CQ stays silent for stallMs (then reports what is missing). */
  async #drain(onBatch: () => void, untilAborted: boolean): Promise<void> {
    const batch = new CompletionBatch(256);
    while (this.#outstanding() > 0 && !(untilAborted && this.#aborted)) {
      try {
        await this.#cq.wait({ timeoutMs: this.#stallMs }, batch);
      } catch (error) {
        if ((error as { code?: string }).code !== 'ETIMEDOUT') throw error;
        if (untilAborted && this.#aborted) return; // abort() reports what is missing
        const what = this.#aborted ? 'after the peer went away' : 'while traffic was under way';
        for (const line of this.missing()) this.#result.failures.push(`lost completion ${what} (no completion for ${this.#stallMs / 1000} s): ${line}`);
        return;
      }
      this.#complete(batch);
      onBatch();
    }
  }

  /** Runs until every message is sent and received (or a stall is reported); the result. */
  async run(): Promise<RcTrafficResult> {
    this.postReceives();
    this.#states.forEach((_, c) => this.#postSends(c));
    await this.#drain(() => this.#states.forEach((_, c) => this.#postSends(c)), true);
    return this.#result;
  }

  /**
   * The peer is gone: post nothing more, then wait for every send in flight to complete (in error,
   * after the QP's retries), move the QPs to ERR and wait for every posted receive to be flushed. A work
   * request that never completes is a failure, after stallMs of silence. Call only once run() settled or
   * instead of awaiting it further (run() then resolves too).
   */
  async abort(): Promise<RcTrafficResult> {
    this.#aborted = true;
    const sendsLeft = (): number => this.#states.reduce((n, s) => n + s.slotMessage.filter((m) => m >= 0).length, 0);
    const batch = new CompletionBatch(256);
    while (sendsLeft() > 0) {
      try {
        await this.#cq.wait({ timeoutMs: this.#stallMs }, batch);
      } catch (error) {
        if ((error as { code?: string }).code !== 'ETIMEDOUT') throw error;
        // The transport's retries are long over: these sends' completions are lost.
        this.#result.sendsNeverFailed = sendsLeft();
        for (const line of this.missing()) this.#result.failures.push(`lost completion after the peer went away (no completion for ${this.#stallMs / 1000} s, no RETRY_EXC_ERR): ${line}`);
        break;
      }
      this.#complete(batch);
    }
    for (const state of this.#states) {
      try {
        state.connection.qp.modify({ qpState: QpState.ERR });
      } catch (error) {
        this.#result.failures.push(`${state.connection.name}: could not move the QP to ERR: ${(error as Error).message}`);
      }
    }
    await this.#drain(() => undefined, false);
    return this.#result;
  }

  /** Deregisters the traffic's memory (the QPs and CQ are the caller's). */
  close(): void {
    this.#sendMr.close();
    this.#recvMr.close();
  }
}

/**
 * `count` round trips on an endpoint whose peer echoes every message: message i of stream `seed` out,
 * its echo checked byte for byte. Each receive is bounded by `timeoutMs`: a lost completion is a rejection
 * naming the message, never a hang. Returns the bytes verified; throws on the first wrong or missing echo.
 */
export async function echoRounds(endpoint: Endpoint, stream: Stream, first: number, count: number, name: string, timeoutMs = 60_000): Promise<number> {
  let bytes = 0;
  for (let i = first; i < first + count; i++) {
    const message = stream.message(i);
    await endpoint.send(message, { timeoutMs });
    let echo: Buffer;
    try {
      echo = await endpoint.receive({ timeoutMs });
    } catch (error) {
      throw new Error(`${name}: echo of message ${i}: ${(error as Error).message}`, { cause: error });
    }
    const wrong = stream.check(i, echo);
    if (wrong !== undefined) throw new Error(`${name}: echo of message ${i}: ${wrong}`);
    bytes += echo.length;
  }
  return bytes;
}

/** Echoes every message back until the connection ends. */
export async function echo(endpoint: Endpoint): Promise<void> {
  try {
    for await (const message of endpoint) await endpoint.send(message);
  } catch {
    // the peer closed or died: nothing left to echo
  }
}
