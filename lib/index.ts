/** rdma-node: RDMA verbs for Node.js over libibverbs. */
export * from './attributes';
export { CompletionBatch, CompletionError, WC_WORDS, type Completion } from './completion';
export * from './constants';
export { Context, type AsyncEvent, type GidEntry } from './context';
export { CompletionChannel, CompletionQueue, type WaitOptions } from './cq';
export { listDevices, openDevice, type DeviceInfo } from './device';
export { RdmaError } from './errors';
export { formatGid, formatGuid, gidIpv4, parseGid } from './gid';
export { MemoryRegion, type RemoteRegion } from './mr';
export { ProtectionDomain } from './pd';
export * from './qp';
export type { BufferSource } from './buffers';
export type { RecvWorkRequest, SendWorkRequest, Sge } from './work-request';
export { createLoopbackPair, type LoopbackOptions, type LoopbackPair } from './loopback';
export { AddressHandle } from './ah';
export { CmId, type CmEvent, type ConnParam } from './cm';
export { MemoryWindow, MwType } from './mw';
export { SharedReceiveQueue, type SrqAttributes } from './srq';
