/**
 * Work completions. poll() writes into a CompletionBatch: one reusable block of 32-bit words (the layout
 * native/verbs/cq.cc writes), read through accessors, so polling allocates nothing. toObjects()/get() give the
 * object form when convenience matters more than allocation.
 */
import { WcFlags, WcOpcode, WcStatus, enumName } from './constants';

/** Words per completion and their positions (native/verbs/cq.cc, kWcWords). */
export const WC_WORDS = 16;
const enum Word { WrIdLo = 0, Status = 2, Opcode, VendorErr, ByteLen, ImmData, QpNum, SrcQp, WcFlags, PkeyIndex, Slid, Sl, DlidPathBits }

export interface Completion {
  wrId: bigint;
  status: WcStatus;
  /** 'SUCCESS', 'REM_ACCESS_ERR', ... (IBV_WC_* without the prefix). */
  statusName: string;
  opcode: WcOpcode;
  opcodeName: string;
  vendorErr: number;
  byteLen: number;
  /** Present when the completion carries immediate data (host byte order). */
  immData?: number;
  /** Present for a receive completion of SEND_WITH_INV. */
  invalidatedRkey?: number;
  qpNum: number;
  srcQp: number;
  wcFlags: number;
  pkeyIndex: number;
  slid: number;
  sl: number;
  dlidPathBits: number;
}

export class CompletionBatch {
  /** Storage handed to the native poll. */
  readonly words: Uint32Array;
  readonly #wrIds: BigUint64Array;
  /** How many completions the last poll wrote. */
  count = 0;

  constructor(capacity = 64) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.words = new Uint32Array(capacity * WC_WORDS);
    this.#wrIds = new BigUint64Array(this.words.buffer);
  }

  get capacity(): number {
    return this.words.length / WC_WORDS;
  }

  wrId(i: number): bigint {
    return this.#wrIds[this.#at(i) / 2]!;
  }
  status(i: number): WcStatus {
    return this.words[this.#at(i) + Word.Status]!;
  }
  opcode(i: number): WcOpcode {
    return this.words[this.#at(i) + Word.Opcode]!;
  }
  byteLen(i: number): number {
    return this.words[this.#at(i) + Word.ByteLen]!;
  }
  immData(i: number): number {
    return this.words[this.#at(i) + Word.ImmData]!;
  }
  wcFlags(i: number): number {
    return this.words[this.#at(i) + Word.WcFlags]!;
  }

  get(i: number): Completion {
    const base = this.#at(i);
    const w = this.words;
    const flags = w[base + Word.WcFlags]!;
    const status = w[base + Word.Status]!;
    const opcode = w[base + Word.Opcode]!;
    const completion: Completion = {
      wrId: this.#wrIds[base / 2]!,
      status,
      statusName: enumName(WcStatus, status),
      opcode,
      opcodeName: enumName(WcOpcode, opcode),
      vendorErr: w[base + Word.VendorErr]!,
      byteLen: w[base + Word.ByteLen]!,
      qpNum: w[base + Word.QpNum]!,
      srcQp: w[base + Word.SrcQp]!,
      wcFlags: flags,
      pkeyIndex: w[base + Word.PkeyIndex]!,
      slid: w[base + Word.Slid]!,
      sl: w[base + Word.Sl]!,
      dlidPathBits: w[base + Word.DlidPathBits]!,
    };
    if (flags & WcFlags.WITH_IMM) completion.immData = w[base + Word.ImmData]!;
    if (flags & WcFlags.WITH_INV) completion.invalidatedRkey = w[base + Word.ImmData]!;
    return completion;
  }

  toObjects(): Completion[] {
    const out: Completion[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.get(i));
    return out;
  }

  *[Symbol.iterator](): IterableIterator<Completion> {
    for (let i = 0; i < this.count; i++) yield this.get(i);
  }

  #at(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`completion ${i} is not in this batch of ${this.count}`);
    return i * WC_WORDS;
  }
}

/** A failed completion as an error, for the promise-based helpers. */
export class CompletionError extends Error {
  readonly completion: Completion;
  constructor(completion: Completion) {
    super(`work request ${completion.wrId} completed with ${completion.statusName} (status ${completion.status}, vendor_err ${completion.vendorErr})`);
    this.name = 'CompletionError';
    this.completion = completion;
  }
}
