/** rdma-node: RDMA verbs for Node.js over libibverbs. */
export { allocate, MappedBuffer, type AllocateOptions, type HugePages } from './alloc';
export * from './attributes';
export { CompletionBatch, CompletionError, WC_WORDS, type Completion } from './completion';
export * from './constants';
export { Context, type AsyncEvent, type GidEntry } from './context';
export { CompletionChannel, CompletionQueue, type WaitOptions } from './cq';
export { listDevices, openDevice, type DeviceInfo } from './device';
export { RdmaError } from './errors';
export { formatGid, formatGuid, gidIpv4, parseGid } from './gid';
export { MemoryRegion, type MrAdvice, type RemoteRegion } from './mr';
export { odpMissing, type OdpTransport } from './odp';
export { ProtectionDomain } from './pd';
export { PreparedWorkRequests } from './prepared';
export * from './qp';
export {
  RegistrationCache,
  monitorStatus,
  type MonitorStatus,
  type RegistrationCacheOptions,
  type RegistrationCacheStats,
  type RegistrationStrategy,
} from './regcache';
export type { BufferSource } from './buffers';
export type { RecvWorkRequest, SendWorkRequest, Sge } from './work-request';
export { createLoopbackPair, type LoopbackOptions, type LoopbackPair } from './loopback';
export { AddressHandle } from './ah';
export { CmId, type CmEvent, type ConnParam } from './cm';
export { MemoryWindow, MwType } from './mw';
export { SharedReceiveQueue, type SrqAttributes } from './srq';
export { Endpoint, Listener, connect, listen, type EndpointOptions, type LocalRegion, type OperationOptions } from './endpoint';
export { splitUdReceive, udReceiveBytes } from './ud';
