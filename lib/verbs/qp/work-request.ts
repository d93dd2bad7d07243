/** Work requests as TypeScript describes them, and their translation to the native form. */
import { toByteRange, type BufferSource } from '../../core/buffers';
import { SendFlags, WrOpcode } from '../constants';
import type { AddressHandle } from '../ah';
import type { MemoryRegion, RemoteRegion } from '../mr';
import type { MemoryWindow } from '../mw';
import type { NativeRecvWr, NativeSendWr, NativeSge } from '../../native';

/**
 * A scatter/gather entry: part of a memory region (bounds-checked; `lkey` overrides the MR's, for
 * testing protection errors), a raw {addr, length, lkey} that only the device dereferences, or, for
 * inline sends only, any buffer (copied at post time).
 */
export type Sge =
  | { mr: MemoryRegion; offset?: number; length?: number; lkey?: number }
  | { addr: bigint; length: number; lkey: number }
  | { buffer: BufferSource };

export interface SendWorkRequest {
  wrId?: bigint | number;
  opcode: WrOpcode;
  sgList?: Sge[];
  /** Generate a completion (default true; false = unsignaled, needs a QP without sqSigAll). */
  signaled?: boolean;
  inline?: boolean;
  solicited?: boolean;
  fence?: boolean;
  /** Immediate data (host order) for *_WITH_IMM. */
  immData?: number;
  /** RDMA_WRITE/READ and atomics: the remote memory (address is where the operation starts). */
  remote?: RemoteRegion | { addr: bigint; rkey: number };
  /** Atomics: the compare value (CMP_AND_SWP) or the addend (FETCH_AND_ADD). */
  compareAdd?: bigint;
  /** CMP_AND_SWP: the value written when the compare matches. */
  swap?: bigint;
  /** SEND_WITH_INV and LOCAL_INV: the rkey to invalidate. */
  invalidateRkey?: number;
  /** UD QPs: where the datagram goes. */
  ud?: { ah: AddressHandle; remoteQpn: number; remoteQkey: number };
  /** XRC_SEND QPs: the XRC SRQ (its srqNum) at the target that receives the request. */
  xrc?: { remoteSrqn: number };
  /** BIND_MW (type-2 windows): the window, its new rkey (mw.nextRkey()) and the part of `mr` it exposes. */
  bind?: { mw: MemoryWindow; rkey: number; mr: MemoryRegion; offset?: number; length?: number; access?: number };
}

export interface RecvWorkRequest {
  wrId?: bigint | number;
  /** Where the received bytes go; [] for a receive that takes no bytes (RDMA write with immediate). */
  sgList: Sge[];
}

function toNativeSge(sge: Sge): NativeSge {
  if ('mr' in sge) return { ...sge.mr.nativeRange(sge.offset, sge.length), lkey: sge.lkey } as NativeSge;
  if ('buffer' in sge) {
    const { arrayBuffer, offset, length } = toByteRange(sge.buffer);
    return { buffer: arrayBuffer, offset, length };
  }
  return sge;
}

/**
 * The native shape of a request. Converting here costs about 2% of what the native side then spends reading
 * it (measured in the VM with prepareSend of 32-request lists: 0.3–0.5 µs of ~25 µs per request): the
 * property reads are the cost, and reading the TS shape natively (four flag booleans, a nested remote)
 * would take more of them, so the conversion stays in TypeScript.
 */
export function toNativeSendWr(wr: SendWorkRequest): NativeSendWr {
  if (typeof wr !== 'object' || wr === null) throw new TypeError('a work request must be an object');
  let flags = 0;
  if (wr.signaled !== false) flags |= SendFlags.SIGNALED;
  if (wr.inline) flags |= SendFlags.INLINE;
  if (wr.solicited) flags |= SendFlags.SOLICITED;
  if (wr.fence) flags |= SendFlags.FENCE;
  return {
    wrId: wr.wrId ?? 0,
    opcode: wr.opcode,
    sendFlags: flags,
    sgList: (wr.sgList ?? []).map(toNativeSge),
    immData: wr.immData,
    invalidateRkey: wr.invalidateRkey,
    remoteAddr: wr.remote?.addr,
    rkey: wr.remote?.rkey,
    compareAdd: wr.compareAdd,
    swap: wr.swap,
    ah: wr.ud?.ah.handle,
    remoteQpn: wr.ud?.remoteQpn,
    remoteQkey: wr.ud?.remoteQkey,
    remoteSrqn: wr.xrc?.remoteSrqn,
    bind: wr.bind && { ...wr.bind, mw: wr.bind.mw.handle, ...wr.bind.mr.nativeRange(wr.bind.offset, wr.bind.length) },
  };
}

export function toNativeRecvWr(wr: RecvWorkRequest): NativeRecvWr {
  if (typeof wr !== 'object' || wr === null) throw new TypeError('a work request must be an object');
  if (!Array.isArray(wr.sgList)) throw new TypeError('a receive work request needs an sgList ([] for one that takes no bytes)');
  return { wrId: wr.wrId ?? 0, sgList: wr.sgList.map(toNativeSge) };
}
