/** An open RDMA device: queries, the GID table, asynchronous events, and the objects made from it. */

import { closeSync, constants as fsConstants, openSync } from 'node:fs';

import { DeviceCap, type DeviceAttributes, type PortAttributes } from './attributes';
import { AsyncEventType, GidType, enumName } from './constants';
import { CompletionChannel, CompletionQueue } from './cq';
import { rdmaError } from '../core/errors';
import { formatGid, gidIpv4 } from '../core/gid';
import { FlowCounters } from './flow';
import type { NativeAsyncEvent, NativeContext } from '../native';
import { ProtectionDomain } from './pd';
import type { QueuePair } from './qp/qp';
import type { SharedReceiveQueue } from './srq';
import { XrcDomain, type XrcdOptions } from './xrcd';
import { NativeEmitter, wrapperOf } from '../native/wrapper';

export interface GidEntry {
  /** 'fe80:0000:...' as ibv_devinfo prints it. */
  gid: string;
  raw: Uint8Array;
  index: number;
  portNum: number;
  type: GidType;
  typeName: 'IB' | 'RoCE v1' | 'RoCE v2';
  /** For IPv4-mapped GIDs (RoCE v2 over IPv4): the address. */
  ipv4?: string;
  /** The netdev the GID belongs to (RoCE), 0 for IB. */
  ifindex: number;
}

export interface AsyncEvent {
  type: number;
  /** ibv_event_type_str(), e.g. 'local work queue catastrophic error'. */
  name: string;
  /** The IBV_EVENT_* name, e.g. 'QP_FATAL'. */
  typeName: string;
  portNum?: number;
  qp?: QueuePair;
  qpNum?: number;
  cq?: CompletionQueue;
  srq?: SharedReceiveQueue;
}

const gidTypeNames = { [GidType.IB]: 'IB', [GidType.ROCE_V1]: 'RoCE v1', [GidType.ROCE_V2]: 'RoCE v2' } as const;

/**
 * Events: 'event' (AsyncEvent) for each asynchronous device event (port active/error, QP fatal, CQ error,
 * SRQ limit, device fatal). The async fd is watched only while someone listens; like a socket with a
 * 'data' listener, that keeps the process alive until the listener goes or the context is closed.
 * close(): closes the device and everything made from it; pending waits reject. Idempotent.
 */
/** Device features a provider may lack, checked by context.supports() / requireFeature(). */
export type DeviceFeature = 'xrc' | 'flow-steering';
const featureFlags: Record<DeviceFeature, keyof typeof DeviceCap> = { xrc: 'XRC', 'flow-steering': 'MANAGED_FLOW_STEERING' };

export class Context extends NativeEmitter<NativeContext> {
  readonly name: string;
  #odpCaps: DeviceAttributes['odpCaps'] | undefined;

  /** @internal Use openDevice() (or cmId.context). */
  constructor(handle: NativeContext) {
    super(handle);
    this.name = handle.deviceName;
    this.on('newListener', (event: string) => {
      if (event === 'event' && this.listenerCount('event') === 0) handle.watchAsyncEvents((e) => this.#dispatch(e));
    });
    this.on('removeListener', (event: string) => {
      if (event === 'event' && this.listenerCount('event') === 0 && !handle.closed) handle.watchAsyncEvents(null);
    });
  }

  /** The one Context for a native context (contexts librdmacm opened are shared by their CM IDs). */
  static of(handle: NativeContext): Context {
    return wrapperOf<Context>(handle) ?? new Context(handle);
  }

  /** The device's ODP capabilities, asked once: they do not change while it is open (ON_DEMAND checks read them). */
  get odpCaps(): DeviceAttributes['odpCaps'] {
    return (this.#odpCaps ??= this.queryDevice().odpCaps);
  }

  queryDevice(): DeviceAttributes {
    return this.handle.queryDevice() as unknown as DeviceAttributes;
  }

  queryPort(port = 1): PortAttributes {
    return this.handle.queryPort(port) as unknown as PortAttributes;
  }

  /** The valid GID entries of every port, with their types. */
  gidTable(): GidEntry[] {
    return this.handle.queryGidTable().map((e) => {
      const raw = new Uint8Array(e.gid);
      return {
        gid: formatGid(raw),
        raw,
        index: e.gidIndex,
        portNum: e.portNum,
        type: e.gidType,
        typeName: gidTypeNames[e.gidType as GidType] ?? 'IB',
        ipv4: gidIpv4(raw),
        ifindex: e.ndevIfindex,
      };
    });
  }

  /**
   * The GID index to use on `port`: the first RoCE v2 IPv4-mapped GID where there is one (what rdma-core's
   * tools are given with `-g` on Soft-RoCE), else index 0.
   */
  defaultGidIndex(port = 1): number {
    const entries = this.gidTable().filter((e) => e.portNum === port);
    return (entries.find((e) => e.type === GidType.ROCE_V2 && e.ipv4) ?? entries[0])?.index ?? 0;
  }

  allocPd(): ProtectionDomain {
    return new ProtectionDomain(this.handle.allocPd(), this);
  }

  /** Whether the device has `feature` (its ibv_device_cap_flags bit): what would fail with EOPNOTSUPP if not. */
  supports(feature: DeviceFeature): boolean {
    if (!Object.hasOwn(featureFlags, feature)) throw new TypeError(`feature must be one of ${Object.keys(featureFlags).join(', ')}`);
    return (this.queryDevice().deviceCapFlags & BigInt(DeviceCap[featureFlags[feature]])) !== 0n;
  }

  /** Throws RdmaError EOPNOTSUPP (verb ibv_query_device) unless the device has `feature`: a check before trying. */
  requireFeature(feature: DeviceFeature): void {
    if (!this.supports(feature)) {
      throw rdmaError('ibv_query_device', 'EOPNOTSUPP', `${this.name} has no ${feature} (IBV_DEVICE_${featureFlags[feature]})`);
    }
  }

  /** Counters for flow rules' count actions (ibv_create_counters); RdmaError EOPNOTSUPP where the provider has none (rxe). */
  createFlowCounters(): FlowCounters {
    return new FlowCounters(this.handle.createFlowCounters(), this);
  }

  /**
   * An XRC domain (ibv_open_xrcd): processes opening it through the same `file` (or an `fd` of it) share
   * it; with neither it is private. The file is opened as ibv_xsrq_pingpong opens it (read-only, made
   * with mode 0440 if missing) and closed again once the domain holds it. RdmaError EOPNOTSUPP where the
   * provider has no XRC (rxe, siw).
   */
  openXrcd(options: XrcdOptions = {}): XrcDomain {
    const { file, fd, create = true, exclusive = false } = options;
    if (file !== undefined && fd !== undefined) throw new TypeError('give file or fd, not both');
    if (file !== undefined && typeof file !== 'string') throw new TypeError('file must be a path');
    if (file === undefined && fd === undefined && !create) throw new TypeError('a private XRC domain (no file or fd) is always created: create must not be false');
    const oflags = (create ? fsConstants.O_CREAT : 0) | (exclusive ? fsConstants.O_EXCL : 0);
    if (file === undefined) return new XrcDomain(this.handle.openXrcd(fd ?? -1, oflags), this);
    const opened = openSync(file, fsConstants.O_RDONLY | fsConstants.O_CREAT, 0o440);
    try {
      return new XrcDomain(this.handle.openXrcd(opened, oflags), this);
    } finally {
      closeSync(opened);
    }
  }

  createCompletionChannel(): CompletionChannel {
    return new CompletionChannel(this.handle.createCompletionChannel(), this);
  }

  /**
   * A CQ of at least `cqe` entries. With `channel` (or `channel: true` for a private one), wait() and the
   * async iterator become available.
   */
  createCq(cqe: number, options: { channel?: CompletionChannel | boolean; compVector?: number } = {}): CompletionQueue {
    let channel: CompletionChannel | undefined;
    if (options.channel === true) channel = this.createCompletionChannel();
    else if (options.channel instanceof CompletionChannel) channel = options.channel;
    else if (options.channel !== undefined && options.channel !== false) throw new TypeError('channel must be a CompletionChannel or a boolean');
    const handle = this.handle.createCq(cqe, channel?.handle ?? null, options.compVector ?? 0);
    return new CompletionQueue(handle, this, channel, options.channel === true);
  }


  #dispatch(event: NativeAsyncEvent): void {
    this.emit('event', {
      type: event.type,
      name: event.name,
      typeName: enumName(AsyncEventType, event.type),
      portNum: event.portNum,
      qp: wrapperOf<QueuePair>(event.qp),
      qpNum: event.qpNum,
      cq: wrapperOf<CompletionQueue>(event.cq),
      srq: wrapperOf<SharedReceiveQueue>(event.srq),
    } satisfies AsyncEvent);
  }
}
