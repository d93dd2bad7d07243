/** On-Demand Paging support as the device reports it (queryDevice().odpCaps), per transport. */
import type { DeviceAttributes } from './attributes';
import { Access, OdpCaps, OdpTransportCaps } from './constants';
import { rdmaError, type RdmaError } from '../core/errors';

export type OdpTransport = 'rc' | 'ud';

/**
 * The ODP operations memory with `access` needs on `transport`: sends and receives always; on RC also
 * RDMA write and read (the memory may be either end of them) and atomics when it grants them.
 */
export function odpNeeds(transport: OdpTransport, access: number): number {
  let needs = OdpTransportCaps.SEND | OdpTransportCaps.RECV;
  if (transport === 'rc') {
    needs |= OdpTransportCaps.WRITE | OdpTransportCaps.READ;
    if (access & Access.REMOTE_ATOMIC) needs |= OdpTransportCaps.ATOMIC;
  }
  return needs;
}

/** Why ODP cannot serve such memory on this device (any ODP at all without a transport); undefined when it can. */
export function odpMissing(caps: DeviceAttributes['odpCaps'], transport?: OdpTransport, access = 0): string | undefined {
  if ((caps.generalCaps & BigInt(OdpCaps.SUPPORT)) === 0n) return 'the device does not report On-Demand Paging';
  if (transport === undefined) return undefined;
  const have = transport === 'rc' ? caps.rcOdpCaps : caps.udOdpCaps;
  const missing = odpNeeds(transport, access) & ~have;
  if (missing === 0) return undefined;
  const names = Object.entries(OdpTransportCaps)
    .filter(([, bit]) => missing & bit)
    .map(([name]) => name);
  return `the device has no ODP ${names.join(', ')} on ${transport.toUpperCase()}`;
}

/** The EOPNOTSUPP a registration asking for ODP gets on a device without it. */
export function odpUnsupported(reason: string): RdmaError {
  return rdmaError('ibv_reg_mr', 'EOPNOTSUPP', reason);
}
