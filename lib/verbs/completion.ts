/**
 * Work completions. poll() writes into a CompletionBatch: one reusable block of 32-bit words (the layout
 * native/verbs/cq.cc writes), read through accessors, so polling allocates nothing. toObjects()/get() give the
 * object form when convenience matters more than allocation.
 */
import { WcFlags, WcOpcode, WcStatus, enumName } from './constants';

/** Words per completion and their positions (native/verbs/completion_layout.h, compared by a unit test). */
export const WC_WORDS = 16;
export enum WcWord { WrIdLo = 0, WrIdHi, Status, Opcode, VendorErr, ByteLen, ImmData, QpNum, SrcQp, WcFlags, PkeyIndex, Slid, Sl, DlidPathBits }

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
  /** wrId(i) as a number, exact for ids below 2^53, without making a bigint. */
  wrIdNumber(i: number): number {
    const base = this.#at(i);
    return this.words[base + WcWord.WrIdLo]! + this.words[base + WcWord.WrIdHi]! * 2 ** 32;
  }
  status(i: number): WcStatus {
    return this.words[this.#at(i) + WcWord.Status]!;
  }
  opcode(i: number): WcOpcode {
    return this.words[this.#at(i) + WcWord.Opcode]!;
  }
  byteLen(i: number): number {
    return this.words[this.#at(i) + WcWord.ByteLen]!;
  }
  immData(i: number): number {
    return this.words[this.#at(i) + WcWord.ImmData]!;
  }
  wcFlags(i: number): number {
    return this.words[this.#at(i) + WcWord.WcFlags]!;
  }

  get(i: number): Completion {
    const base = this.#at(i);
    const w = this.words;
    const flags = w[base + WcWord.WcFlags]!;
    const status = w[base + WcWord.Status]!;
    const opcode = w[base + WcWord.Opcode]!;
    const completion: Completion = {
      wrId: this.#wrIds[base / 2]!,
      status,
      statusName: enumName(WcStatus, status),
      opcode,
      opcodeName: enumName(WcOpcode, opcode),
      vendorErr: w[base + WcWord.VendorErr]!,
      byteLen: w[base + WcWord.ByteLen]!,
      qpNum: w[base + WcWord.QpNum]!,
      srcQp: w[base + WcWord.SrcQp]!,
      wcFlags: flags,
      pkeyIndex: w[base + WcWord.PkeyIndex]!,
      slid: w[base + WcWord.Slid]!,
      sl: w[base + WcWord.Sl]!,
      dlidPathBits: w[base + WcWord.DlidPathBits]!,
    };
    if (flags & WcFlags.WITH_IMM) completion.immData = w[base + WcWord.ImmData]!;
    if (flags & WcFlags.WITH_INV) completion.invalidatedRkey = w[base + WcWord.ImmData]!;
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
