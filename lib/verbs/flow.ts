/**
 * Flow steering (ibv_create_flow): rules that direct received packets to a QP by their headers, for
 * devices with managed flow steering (mlx4, mlx5, bnxt_re; RAW_PACKET QPs on mlx4/mlx5). Values and masks
 * are given in host order and packed in network order, as the headers carry them; a zero mask field
 * matches anything. Devices without it (rxe, siw) refuse with RdmaError EOPNOTSUPP.
 */
import type { Context } from './context';
import type { NativeFlow, NativeFlowCounters } from '../native';
import type { QueuePair } from './qp/qp';
import { NativeObject } from '../native/wrapper';

/** ibv_flow_attr_type */
export enum FlowType { NORMAL = 0, ALL_DEFAULT = 1, MC_DEFAULT = 2, SNIFFER = 3 }

/** ibv_flow_flags */
export enum FlowFlags { DONT_TRAP = 1 << 1, EGRESS = 1 << 2 }

/** An address as text ('10.0.0.1', 'fe80::1', '02:00:00:00:00:01') or its bytes. */
export type FlowAddress = string | Uint8Array;

export interface EthFilter { dstMac?: FlowAddress; srcMac?: FlowAddress; etherType?: number; vlanTag?: number }
export interface Ipv4Filter { srcIp?: FlowAddress; dstIp?: FlowAddress }
export interface Ipv4ExtFilter extends Ipv4Filter { proto?: number; tos?: number; ttl?: number; flags?: number }
export interface Ipv6Filter { srcIp?: FlowAddress; dstIp?: FlowAddress; flowLabel?: number; nextHdr?: number; trafficClass?: number; hopLimit?: number }
export interface PortFilter { dstPort?: number; srcPort?: number }
export interface TunnelFilter { tunnelId?: number }
export interface GreFilter { cKsRes0Ver?: number; protocol?: number; key?: number }
export interface MplsFilter { label?: number }
export interface EspFilter { spi?: number; seq?: number }

/** A header spec: what to match (`value`) under which bits (`mask`); `inner`: inside a tunnel. */
type Header<T extends string, F> = { type: T; value?: F; mask?: F; inner?: boolean };

export type FlowSpec =
  | Header<'eth', EthFilter>
  | Header<'ipv4', Ipv4Filter>
  | Header<'ipv4-ext', Ipv4ExtFilter>
  | Header<'ipv6', Ipv6Filter>
  | Header<'tcp' | 'udp', PortFilter>
  | Header<'vxlan', TunnelFilter>
  | Header<'gre', GreFilter>
  | Header<'mpls', MplsFilter>
  | Header<'esp', EspFilter>
  /** Mark matching packets with a tag the completion reports. */
  | { type: 'tag'; tagId: number }
  | { type: 'drop' }
  /** Count matching packets and bytes in `counters` (define their indexes with attach() first). */
  | { type: 'count'; counters: FlowCounters };

export interface FlowAttributes {
  type?: FlowType;
  priority?: number;
  /** Port number (default 1). */
  port?: number;
  flags?: number;
  specs: FlowSpec[];
}

/** What a counter index counts (enum ibv_counter_description). */
const counterDescriptions = { packets: 0, bytes: 1 } as const;

/**
 * Flow counters (ibv_counters): define what each index counts with attach(), name them in a rule's
 * `count` spec, read() them. Devices without (rxe, siw) refuse to make them with RdmaError EOPNOTSUPP.
 * close(): also removes the flows counting into them.
 */
export class FlowCounters extends NativeObject<NativeFlowCounters> {
  readonly context: Context;

  /** @internal Use context.createFlowCounters(). */
  constructor(handle: NativeFlowCounters, context: Context) {
    super(handle, false);
    this.context = context;
  }

  /** Counter `index` counts `what` of the flows that use these counters (ibv_attach_counters_point_flow, before they exist). */
  attach(what: keyof typeof counterDescriptions, index: number): void {
    const description = counterDescriptions[what];
    if (description === undefined) throw new TypeError(`a counter counts one of ${Object.keys(counterDescriptions).join(', ')}`);
    this.handle.attach(description, index);
  }

  /** Every attached counter, by index (ibv_read_counters; `preferCached`: a cached value will do). */
  read(options: { preferCached?: boolean } = {}): BigUint64Array {
    return this.handle.read(options.preferCached ?? false);
  }
}

/** The rule as the native side reads it: counters by their native object. */
export function toNativeFlowAttributes(attributes: FlowAttributes): object {
  if (typeof attributes !== 'object' || attributes === null || !Array.isArray(attributes.specs)) return attributes;
  const specs = attributes.specs.map((spec) => {
    if (spec?.type !== 'count') return spec;
    if (!(spec.counters instanceof FlowCounters)) throw new TypeError('a count spec needs counters made by context.createFlowCounters()');
    return { type: 'count', counters: spec.counters.handle };
  });
  return { ...attributes, specs };
}

/** A flow rule steering packets to its QP; close() removes it (closing the QP does too). */
export class Flow extends NativeObject<NativeFlow> {
  readonly qp: QueuePair;

  /** @internal Use qp.createFlow(). */
  constructor(handle: NativeFlow, qp: QueuePair) {
    super(handle, false);
    this.qp = qp;
  }
}
