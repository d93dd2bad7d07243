/**
 * The small protocol connected endpoints speak over RC: a hello in the CM private data, and the
 * immediate data of every SEND carrying the message kind and the receive credits it returns. Pure logic,
 * kept apart from the verbs so it can be tested alone.
 */

const MAGIC = 0x524e; // 'RN'
const VERSION = 1;
export const HELLO_BYTES = 10;

/** What each side tells the other when connecting. */
export interface Hello {
  /** Largest message the side can receive. */
  maxMessageSize: number;
  /** Messages the peer may send before it hears of more credits. */
  credits: number;
}

export function encodeHello(hello: Hello): Buffer {
  const out = Buffer.alloc(HELLO_BYTES);
  out.writeUInt16BE(MAGIC, 0);
  out.writeUInt8(VERSION, 2);
  out.writeUInt32BE(hello.maxMessageSize, 4);
  out.writeUInt16BE(hello.credits, 8);
  return out;
}

/** The peer's hello, or undefined if the private data is not ours (transports pad it with zeros). */
export function decodeHello(data: Uint8Array): Hello | undefined {
  if (data.length < HELLO_BYTES) return undefined;
  const view = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (view.readUInt16BE(0) !== MAGIC || view.readUInt8(2) !== VERSION) return undefined;
  return { maxMessageSize: view.readUInt32BE(4), credits: view.readUInt16BE(8) };
}

export enum MessageKind { DATA = 1, CREDITS = 2 }

/** Immediate data: kind in the top byte, returned credits in the low 24 bits. */
export function encodeImm(kind: MessageKind, credits: number): number {
  if (!Number.isInteger(credits) || credits < 0 || credits > 0xffffff) throw new RangeError('credits out of range');
  return ((kind << 24) | credits) >>> 0;
}

export function decodeImm(imm: number): { kind: MessageKind; credits: number } {
  return { kind: imm >>> 24, credits: imm & 0xffffff };
}

/**
 * Send credits: a message may only be sent while the peer has a receive posted for it, so the peer
 * never answers with receiver-not-ready. Receives reposted here are owed back to the peer, piggybacked on
 * the next message, or sent alone once half the window is owed (so a one-way stream never stalls).
 */
export class CreditWindow {
  #available: number;
  #owed = 0;
  readonly #window: number;

  /** `peerCredits`: what the peer's hello granted; `window`: what ours granted. */
  constructor(peerCredits: number, window: number) {
    this.#available = peerCredits;
    this.#window = window;
  }

  get available(): number {
    return this.#available;
  }

  get owed(): number {
    return this.#owed;
  }

  /** Takes one credit for a message; false when none is left (the message must wait). */
  take(): boolean {
    if (this.#available === 0) return false;
    this.#available--;
    return true;
  }

  /** Credits the peer returned. */
  grant(credits: number): void {
    this.#available += credits;
  }

  /** A data receive was consumed and reposted: one more credit is owed to the peer. */
  reposted(): void {
    this.#owed++;
  }

  /** The owed credits, now being returned with a message. */
  collect(): number {
    const owed = this.#owed;
    this.#owed = 0;
    return owed;
  }

  /** Whether to return credits in a message of their own. */
  shouldReturnAlone(): boolean {
    return this.#owed >= Math.max(1, Math.floor(this.#window / 2));
  }
}
