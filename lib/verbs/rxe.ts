/**
 * Soft-RoCE (rdma_rxe) devices added and deleted over the kernel's RDMA netlink, as iproute2's
 * `rdma link add NAME type rxe netdev NETDEV` and `rdma link delete NAME` do, and every RDMA port listed
 * as `rdma link show` lists them. Adding and deleting need CAP_NET_ADMIN.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

import { PortState, QpState } from './constants';
import { rdmaError } from '../core/errors';
import { formatGuid } from '../core/gid';
import { native } from '../native';

/** One port of an RDMA device. */
export interface RdmaLink {
  /** The RDMA device, e.g. 'rxe0'. */
  name: string;
  /** The kernel's index of the device (what ibv_get_device_index says). */
  index: number;
  port: number;
  /** As ibv_devices prints it. */
  nodeGuid: string;
  /** 'roce', 'ib', 'iw'... when the kernel says. */
  protocol?: string;
  state: PortState;
  /** As `rdma link show` prints it: 'ACTIVE', 'DOWN'... */
  stateName: string;
  physicalState: number;
  /** As `rdma link show` prints it: 'LINK_UP', 'DISABLED'... */
  physicalStateName: string;
  /** The network device the port is bound to (RoCE and iWARP). */
  netdev?: string;
  netdevIndex?: number;
}

// iproute2's names (rdma/link.c), index = IBTA PortPhysicalState.
const physicalStates = ['NOP', 'SLEEP', 'POLLING', 'DISABLED', 'ARMED', 'LINK_UP', 'LINK_ERROR_RECOVER', 'PHY_TEST', 'UNKNOWN', 'OPA_OFFLINE', 'UNKNOWN', 'OPA_TEST'];

/**
 * Adds a Soft-RoCE device on the network device `netdev`; returns its name: `name`, or the first free
 * `rxeN` (the names rdma_rxe gives its own devices).
 */
export function addRxe(netdev: string, options: { name?: string } = {}): string {
  const { name } = options;
  return native.rdmaLinkAdd(name, netdev, 'rxe');
}

/** The character devices (/dev/infiniband/uverbsN) through which contexts on the RDMA device `name` are opened. */
function verbsDevices(name: string): string[] {
  const dir = '/sys/class/infiniband_verbs';
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.filter((entry) => {
    try {
      return readFileSync(`${dir}/${entry}/ibdev`, 'utf8').trim() === name;
    } catch {
      return false;
    }
  }).map((entry) => `/dev/infiniband/${entry}`);
}

/** Whether this process has a context open on the RDMA device `name` (its own, or one librdmacm opened). */
function holdsDevice(name: string): boolean {
  const devices = new Set(verbsDevices(name));
  if (devices.size === 0) return false;
  return readdirSync('/proc/self/fd').some((fd) => {
    try {
      return devices.has(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      return false;
    }
  });
}

/**
 * Deletes the device `name` (any the kernel lets netlink delete: rxe, siw). RdmaError ENODEV when there is
 * none. The kernel's deletion waits until every process holding a context on the device has closed it
 * (rxe cannot revoke one): a process that holds one itself would wait for itself forever, so that is an
 * RdmaError EBUSY instead. librdmacm opens every device once a process uses it and keeps them: such a
 * process deletes a device through another (`rdma-node rxe del NAME`).
 */
export function deleteRxe(name: string): void {
  if (typeof name !== 'string') throw new TypeError('name must be a string');
  if (holdsDevice(name)) {
    throw rdmaError('rdma link del', 'EBUSY', `this process has ${name} open (its own contexts, or librdmacm's); close them, or delete it from another process`);
  }
  native.rdmaLinkDelete(name);
}

/**
 * The state of QP1 of the device's `port`: the GSI QP the kernel sends and receives all connection
 * management through, as `rdma res show qp link NAME/PORT lqpn 1` shows it. On rxe it can be left in ERR
 * for good (see the README); then no rdma_cm connection can be made through that port. RdmaError ENODEV
 * when there is no such device, ENOENT when the port has no QP1 (iWARP).
 */
export function gsiQpState(name: string, port = 1): QpState {
  if (!Number.isInteger(port) || port < 1 || port > 255) throw new RangeError('port must be an integer from 1 to 255');
  return native.rdmaGsiQpState(name, port);
}

/** Every port of every RDMA device, with the netdev it is bound to. */
export function listRdmaLinks(): RdmaLink[] {
  return native.rdmaLinkList().map((link) => ({
    ...link,
    nodeGuid: formatGuid(link.nodeGuid),
    stateName: PortState[link.state] ?? 'UNKNOWN',
    physicalStateName: physicalStates[link.physicalState] ?? 'UNKNOWN',
  }));
}
