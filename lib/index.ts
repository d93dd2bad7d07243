/** rdma-node: RDMA verbs for Node.js over libibverbs. */
export { allocate, MappedBuffer, type AllocateOptions, type HugePages } from './memory/mapped';
export { Segment, SegmentAccess, getSegment, makeSegment, type SegmentChannel, type SegmentOptions, type SegmentPermit, type SegmentRemoval } from './memory/segments';
export { PeerMemory, allowPeerAccess, peerMemory, ptraceScope, readFrom, writeTo, type PeerMemoryDescriptor, type PeerRange } from './memory/cma';
export * from './verbs/attributes';
export { CompletionBatch, CompletionError, WC_WORDS, type Completion } from './verbs/completion';
export * from './verbs/constants';
export { Context, type AsyncEvent, type DeviceFeature, type GidEntry } from './verbs/context';
export { CompletionChannel, CompletionQueue, type WaitOptions } from './verbs/cq';
export { listDevices, openDevice, type DeviceInfo } from './verbs/device';
export { addRxe, deleteRxe, gsiQpState, listRdmaLinks, type RdmaLink } from './verbs/rxe';
export { RdmaError } from './core/errors';
export { formatGid, formatGuid, gidIpv4, parseGid } from './core/gid';
export { CachedMemoryRegion, MemoryRegion, type MrAdvice, type RemoteRegion } from './verbs/mr';
export { odpMissing, type OdpTransport } from './verbs/odp';
export { ProtectionDomain } from './verbs/pd';
export { PreparedWorkRequests, ReceiveRing } from './verbs/qp/prepared';
export { CrossingCounter } from './native/crossings';
export { Flow, FlowCounters, FlowFlags, FlowType, type FlowAttributes, type FlowSpec } from './verbs/flow';
export { XrcDomain, XrcTargetQp, type XrcdOptions } from './verbs/xrcd';
export * from './verbs/qp/qp';
export {
  RegistrationCache,
  monitorStatus,
  type MonitorStatus,
  type RegistrationCacheOptions,
  type RegistrationCacheStats,
  type RegistrationStrategy,
} from './memory/registration-cache';
export { odpMisplaces } from './memory/odp-probe';
export type { BufferSource } from './core/buffers';
export type { RecvWorkRequest, SendWorkRequest, Sge } from './verbs/qp/work-request';
export { createLoopbackPair, type LoopbackOptions, type LoopbackPair } from './endpoint/loopback';
export { AddressHandle } from './verbs/ah';
export { CmId, type CmEvent, type ConnParam } from './cm/id';
export { MemoryWindow, MwType } from './verbs/mw';
export { SharedReceiveQueue, type SrqAttributes } from './verbs/srq';
export { Endpoint, Listener, connect, listen, type EndpointOptions, type LocalRegion, type OperationOptions } from './endpoint/endpoint';
export { splitUdReceive, udReceiveBytes } from './verbs/qp/ud';
export { joinJob, Job, type JoinOptions, type Launcher } from './jobs/join';
export { Communicator, communicator, defaultThresholds, largeMessageAlgorithms, type CollectiveOptions, type CommunicatorOptions, type DataTypeName, type ReduceOpName, type ReduceOptions, type Thresholds } from './collectives';
export type { ConnectOptions as JobConnectOptions, JobConnections } from './jobs/connect';
export { launch, RunningJob, type RunOptions, type JobRecord, type RankRecord, type Usage } from './jobs/launcher';
export { BootstrapError } from './jobs/rendezvous';
