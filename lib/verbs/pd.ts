/** Protection domains: the parent of memory regions and queue pairs. */
import { AddressHandle } from './ah';
import type { Completion } from './completion';
import { Access, QpType, UD_GRH_BYTES } from './constants';
import type { Context } from './context';
import { CompletionQueue } from './cq';
import { MemoryRegion } from './mr';
import type { NativePd } from '../native';
import { MemoryWindow, MwType } from './mw';
import { odpMissing, odpUnsupported } from './odp';
import { QueuePair, type AddressVector, type QpInitAttributes } from './qp/qp';
import { SharedReceiveQueue, type SrqAttributes } from './srq';
import { XrcDomain } from './xrcd';
import { toByteRange, type BufferSource } from '../core/buffers';
import { NativeObject } from '../native/wrapper';

/**
 * A PD also makes registration caches: pd.createRegistrationCache() is added by the memory layer above
 * (lib/memory/registration-cache.ts), which verbs must not import.
 * close(): closes the PD and everything made from it (MRs, windows, QPs, SRQs, AHs). Idempotent.
 */
export class ProtectionDomain extends NativeObject<NativePd> {
  readonly context: Context;

  /** @internal Use context.allocPd() (or an endpoint's). */
  constructor(handle: NativePd, context: Context) {
    super(handle);
    this.context = context;
  }

  /**
   * Registers `buffer` (an ArrayBuffer, Buffer or typed array; optionally a byte range of it) with the
   * given access flags (default LOCAL_WRITE). The buffer cannot be collected while the MR lives.
   * Access.ON_DEMAND on a device without On-Demand Paging is an RdmaError EOPNOTSUPP.
   */
  registerMemory(buffer: BufferSource, access: number = Access.LOCAL_WRITE, range: { offset?: number; length?: number } = {}): MemoryRegion {
    const { arrayBuffer, offset, length } = toByteRange(buffer, range.offset, range.length);
    // Only a well-formed flag set is asked about ODP; the native call reports a malformed one.
    if (Number.isInteger(access) && access >= 0 && access & Access.ON_DEMAND) {
      const missing = odpMissing(this.context.odpCaps);
      if (missing !== undefined) throw odpUnsupported(missing);
    }
    const handle = this.handle.registerMemory(arrayBuffer, offset, length, access);
    return new MemoryRegion(handle, this, arrayBuffer, offset, length);
  }

  /**
   * A queue pair (RC unless `qpType` says otherwise) sending to `sendCq` and receiving to `recvCq`. An
   * XRC_SEND QP (an XRC initiator) has no receive queue; XRC_RECV QPs are made by xrcd.createQp().
   */
  createQp(attributes: QpInitAttributes): QueuePair {
    const qpType = attributes.qpType ?? QpType.RC;
    const { sendCq, recvCq = qpType === QpType.XRC_SEND ? undefined : sendCq, srq, ...rest } = attributes;
    if (srq !== undefined && !(srq instanceof SharedReceiveQueue)) throw new TypeError('srq must be a SharedReceiveQueue made by pd.createSrq()');
    return new QueuePair(this.handle.createQp(sendCq.handle, recvCq?.handle, { ...rest, qpType, srq: srq?.handle }), qpType, this, sendCq, recvCq, srq);
  }

  /** An address handle for UD sends to `address` (for RoCE: a GRH with the destination GID). */
  createAh(address: AddressVector): AddressHandle {
    return new AddressHandle(this.handle.createAh(address), this);
  }

  /**
   * An address handle answering the sender of a UD receive completion. `grh` is the first 40 bytes of
   * the receive buffer (UD receives always start with the GRH slot).
   */
  createAhFromCompletion(completion: Completion, grh: Uint8Array, portNum = 1): AddressHandle {
    return new AddressHandle(this.handle.createAhFromCompletion(portNum, completion, grh.subarray(0, UD_GRH_BYTES)), this);
  }

  /**
   * A shared receive queue; with `xrcd` and `cq`, an XRC SRQ (ibv_create_srq_ex, IBV_SRQT_XRC): the
   * receive queue of the domain's XRC target QPs for every sender naming its `srqNum`, completing to `cq`.
   */
  createSrq(attributes: Partial<SrqAttributes> & { xrcd?: XrcDomain; cq?: CompletionQueue } = {}): SharedReceiveQueue {
    const { xrcd, cq, ...rest } = attributes;
    if (xrcd !== undefined && !(xrcd instanceof XrcDomain)) throw new TypeError('xrcd must be an XrcDomain made by context.openXrcd()');
    if (cq !== undefined && !(cq instanceof CompletionQueue)) throw new TypeError('cq must be a CompletionQueue');
    return new SharedReceiveQueue(this.handle.createSrq({ ...rest, xrcd: xrcd?.handle, cq: cq?.handle }), this, xrcd, cq);
  }

  allocMw(type: MwType = MwType.TYPE_2): MemoryWindow {
    return new MemoryWindow(this.handle.allocMw(type), this);
  }
}
