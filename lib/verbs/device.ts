/** The RDMA devices of this host, and opening one. */
import { NodeType, TransportType, enumName } from './constants';
import { Context } from './context';
import { rdmaError } from '../core/errors';
import { formatGuid } from '../core/gid';
import { native } from '../native';

export interface DeviceInfo {
  name: string;
  /** Node GUID as ibv_devices prints it. */
  guid: string;
  nodeType: NodeType;
  nodeTypeName: string;
  transportType: TransportType;
  transportTypeName: string;
  index: number;
}

/** Every RDMA device libibverbs sees; empty (not an error) on a kernel without RDMA. */
export function listDevices(): DeviceInfo[] {
  return native.listDevices().map((d) => ({
    name: d.name,
    guid: formatGuid(d.guid),
    nodeType: d.nodeType,
    nodeTypeName: enumName(NodeType, d.nodeType),
    transportType: d.transportType,
    transportTypeName: enumName(TransportType, d.transportType),
    index: d.index,
  }));
}

/** Opens a device by name, or the first one. Throws RdmaError ENODEV when there is none. */
export function openDevice(name?: string): Context {
  if (name !== undefined && typeof name !== 'string') throw new TypeError('device name must be a string');
  const device = name ?? listDevices()[0]?.name;
  if (device === undefined) throw rdmaError('ibv_get_device_list', 'ENODEV', 'no RDMA device on this host');
  return new Context(native.openContext(device));
}
