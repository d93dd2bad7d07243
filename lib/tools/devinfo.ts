/**
 * `rdma-node devinfo [-v] [--json]`: what ibv_devinfo prints (device and port attributes, with -v the
 * capability flags, ODP and atomic caps, and every GID with its type), in its layout or as JSON.
 */
import { DeviceCap, flagNames, type DeviceAttributes, type PortAttributes } from '../verbs/attributes';
import { AtomicCap, OdpCaps, OdpTransportCaps, PortState, TransportType } from '../verbs/constants';
import type { GidEntry } from '../verbs/context';
import { listDevices, openDevice, type DeviceInfo } from '../verbs/device';
import { flag, intOption, parseOptions, stringOption, type OptionSpec } from '../core/argv';
import { formatGuid, formatIpv6 } from '../core/gid';

export interface PortInfo {
  port: number;
  attributes: PortAttributes;
  gids: GidEntry[];
}

export interface DevInfo {
  device: DeviceInfo;
  attributes: DeviceAttributes;
  ports: PortInfo[];
}

/** Queries every port of `device` (or only `port`). */
export function collectDevInfo(device: DeviceInfo, port?: number): DevInfo {
  using context = openDevice(device.name);
  const attributes = context.queryDevice();
  const gids = context.gidTable();
  const numbers = port !== undefined ? [port] : Array.from({ length: attributes.physPortCnt }, (_, i) => i + 1);
  const ports = numbers.map((n) => ({ port: n, attributes: context.queryPort(n), gids: gids.filter((g) => g.portNum === n) }));
  return { device, attributes, ports };
}

const transportNames: Record<number, string> = {
  [TransportType.IB]: 'InfiniBand',
  [TransportType.IWARP]: 'iWARP',
  [TransportType.USNIC]: 'usNIC',
  [TransportType.USNIC_UDP]: 'usNIC UDP',
  [TransportType.UNSPECIFIED]: 'unspecified',
};
const portStates: Record<number, string> = {
  [PortState.NOP]: 'PORT_NOP', [PortState.DOWN]: 'PORT_DOWN', [PortState.INIT]: 'PORT_INIT',
  [PortState.ARMED]: 'PORT_ARMED', [PortState.ACTIVE]: 'PORT_ACTIVE', [PortState.ACTIVE_DEFER]: 'PORT_ACTIVE_DEFER',
};
const atomicCaps: Record<number, string> = { [AtomicCap.NONE]: 'ATOMIC_NONE', [AtomicCap.HCA]: 'ATOMIC_HCA', [AtomicCap.GLOB]: 'ATOMIC_GLOB' };
const widths: Record<number, string> = { 1: '1X', 2: '4X', 4: '8X', 8: '12X', 16: '2X' };
const speeds: Record<number, string> = {
  1: '2.5 Gbps', 2: '5.0 Gbps', 4: '10.0 Gbps', 8: '10.0 Gbps', 16: '14.0 Gbps', 32: '25.0 Gbps', 64: '50.0 Gbps', 128: '100.0 Gbps',
};
const physStates: Record<number, string> = {
  1: 'SLEEP', 2: 'POLLING', 3: 'DISABLED', 4: 'PORT_CONFIGURATION TRAINNING', 5: 'LINK_UP', 6: 'LINK_ERROR_RECOVERY', 7: 'PHY TEST',
};
const vlCounts: Record<number, number> = { 1: 1, 2: 2, 3: 4, 4: 8, 5: 15 };
const linkLayers: Record<number, string> = { 0: 'Unspecified', 1: 'InfiniBand', 2: 'Ethernet' };
const generalOdp = { ODP_SUPPORT: OdpCaps.SUPPORT, ODP_SUPPORT_IMPLICIT: OdpCaps.SUPPORT_IMPLICIT };
const transportOdp = {
  SUPPORT_SEND: OdpTransportCaps.SEND, SUPPORT_RECV: OdpTransportCaps.RECV, SUPPORT_WRITE: OdpTransportCaps.WRITE,
  SUPPORT_READ: OdpTransportCaps.READ, SUPPORT_ATOMIC: OdpTransportCaps.ATOMIC, SUPPORT_SRQ: OdpTransportCaps.SRQ_RECV,
};

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const named = (table: Record<number, string>, value: number): string => `${table[value] ?? 'invalid'} (${value})`;
const mtu = (value: number): string => `${128 << value} (${value})`;

/** ibv_devinfo's flag lists: one name per line, the unnamed rest as 'Unknown flags: 0x..'. */
function flagLines(table: Record<string, number>, value: number | bigint, indent: string, none?: string): string[] {
  const flags = BigInt(value);
  if (flags === 0n && none) return [`${indent}${none}`];
  const names = flagNames(table, flags);
  const known = Object.values(table).reduce((all, bit) => all | BigInt(bit), 0n);
  const lines = names.map((name) => `${indent}${name}`);
  if (flags & ~known) lines.push(`${indent}Unknown flags: 0x${(flags & ~known).toString(16).toUpperCase()}`);
  return lines;
}

export function formatDevInfo(info: DevInfo, verbose: boolean): string[] {
  const a = info.attributes;
  const lines = [
    `hca_id:\t${info.device.name}`,
    `\ttransport:\t\t\t${named(transportNames, info.device.transportType)}`,
    `\tfw_ver:\t\t\t\t${a.fwVer}`,
    `\tnode_guid:\t\t\t${formatGuid(a.nodeGuid)}`,
    `\tsys_image_guid:\t\t\t${formatGuid(a.sysImageGuid)}`,
    `\tvendor_id:\t\t\t0x${a.vendorId.toString(16).padStart(4, '0')}`,
    `\tvendor_part_id:\t\t\t${a.vendorPartId}`,
    `\thw_ver:\t\t\t\t0x${a.hwVer.toString(16).toUpperCase()}`,
    `\tphys_port_cnt:\t\t\t${a.physPortCnt}`,
  ];
  if (verbose) {
    const odp = a.odpCaps;
    lines.push(
      `\tmax_mr_size:\t\t\t${hex(a.maxMrSize)}`,
      `\tpage_size_cap:\t\t\t${hex(a.pageSizeCap)}`,
      `\tmax_qp:\t\t\t\t${a.maxQp}`,
      `\tmax_qp_wr:\t\t\t${a.maxQpWr}`,
      `\tdevice_cap_flags:\t\t0x${(a.deviceCapFlags & 0xffffffffn).toString(16).padStart(8, '0')}`,
      ...flagLines(DeviceCap, a.deviceCapFlags & 0xffffffffn, '\t\t\t\t\t'),
      `\tmax_sge:\t\t\t${a.maxSge}`,
      `\tmax_sge_rd:\t\t\t${a.maxSgeRd}`,
      `\tmax_cq:\t\t\t\t${a.maxCq}`,
      `\tmax_cqe:\t\t\t${a.maxCqe}`,
      `\tmax_mr:\t\t\t\t${a.maxMr}`,
      `\tmax_pd:\t\t\t\t${a.maxPd}`,
      `\tmax_qp_rd_atom:\t\t\t${a.maxQpRdAtom}`,
      `\tmax_ee_rd_atom:\t\t\t${a.maxEeRdAtom}`,
      `\tmax_res_rd_atom:\t\t${a.maxResRdAtom}`,
      `\tmax_qp_init_rd_atom:\t\t${a.maxQpInitRdAtom}`,
      `\tmax_ee_init_rd_atom:\t\t${a.maxEeInitRdAtom}`,
      `\tatomic_cap:\t\t\t${named(atomicCaps, a.atomicCap)}`,
      `\tmax_ee:\t\t\t\t${a.maxEe}`,
      `\tmax_rdd:\t\t\t${a.maxRdd}`,
      `\tmax_mw:\t\t\t\t${a.maxMw}`,
      `\tmax_raw_ipv6_qp:\t\t${a.maxRawIpv6Qp}`,
      `\tmax_raw_ethy_qp:\t\t${a.maxRawEthyQp}`,
      `\tmax_mcast_grp:\t\t\t${a.maxMcastGrp}`,
      `\tmax_mcast_qp_attach:\t\t${a.maxMcastQpAttach}`,
      `\tmax_total_mcast_qp_attach:\t${a.maxTotalMcastQpAttach}`,
      `\tmax_ah:\t\t\t\t${a.maxAh}`,
      `\tmax_srq:\t\t\t${a.maxSrq}`,
      `\tmax_srq_wr:\t\t\t${a.maxSrqWr}`,
      `\tmax_srq_sge:\t\t\t${a.maxSrqSge}`,
      `\tmax_pkeys:\t\t\t${a.maxPkeys}`,
      `\tlocal_ca_ack_delay:\t\t${a.localCaAckDelay}`,
      '\tgeneral_odp_caps:',
      ...flagLines(generalOdp, odp.generalCaps, '\t\t\t\t\t', 'NO SUPPORT'),
      '\trc_odp_caps:',
      ...flagLines(transportOdp, odp.rcOdpCaps, '\t\t\t\t\t', 'NO SUPPORT'),
      '\tuc_odp_caps:',
      ...flagLines(transportOdp, odp.ucOdpCaps, '\t\t\t\t\t', 'NO SUPPORT'),
      '\tud_odp_caps:',
      ...flagLines(transportOdp, odp.udOdpCaps, '\t\t\t\t\t', 'NO SUPPORT'),
      '\txrc_odp_caps:',
      ...flagLines(transportOdp, a.xrcOdpCaps, '\t\t\t\t\t', 'NO SUPPORT'),
      a.completionTimestampMask ? `\tcompletion timestamp_mask:\t\t\t0x${a.completionTimestampMask.toString(16).padStart(16, '0')}` : '\tcompletion_timestamp_mask not supported',
      a.hcaCoreClock ? `\thca_core_clock:\t\t\t${a.hcaCoreClock}kHZ` : '\tcore clock not supported',
      `\tdevice_cap_flags_ex:\t\t0x${a.deviceCapFlags.toString(16).toUpperCase()}`,
      ...flagLines({}, a.deviceCapFlags >> 32n << 32n, '\t\t\t\t\t'),
      `\tmax_wq_type_rq:\t\t\t${a.maxWqTypeRq}`,
      `\tpci_atomic_caps: fetch_add 0x${a.pciAtomicCaps.fetchAdd.toString(16)}, swap 0x${a.pciAtomicCaps.swap.toString(16)}, compare_swap 0x${a.pciAtomicCaps.compareSwap.toString(16)}`,
    );
  }
  for (const port of info.ports) lines.push(...formatPort(port, verbose));
  lines.push('');
  return lines;
}

function formatPort({ port, attributes: p, gids }: PortInfo, verbose: boolean): string[] {
  const lines = [
    `\t\tport:\t${port}`,
    `\t\t\tstate:\t\t\t${named(portStates, p.state)}`,
    `\t\t\tmax_mtu:\t\t${mtu(p.maxMtu)}`,
    `\t\t\tactive_mtu:\t\t${mtu(p.activeMtu)}`,
    `\t\t\tsm_lid:\t\t\t${p.smLid}`,
    `\t\t\tport_lid:\t\t${p.lid}`,
    `\t\t\tport_lmc:\t\t0x${p.lmc.toString(16).padStart(2, '0')}`,
    `\t\t\tlink_layer:\t\t${linkLayers[p.linkLayer] ?? 'Unknown'}`,
  ];
  if (!verbose) return lines;
  lines.push(
    `\t\t\tmax_msg_sz:\t\t${hex(p.maxMsgSz)}`,
    `\t\t\tport_cap_flags:\t\t0x${p.portCapFlags.toString(16).padStart(8, '0')}`,
    `\t\t\tport_cap_flags2:\t0x${p.portCapFlags2.toString(16).padStart(4, '0')}`,
    `\t\t\tmax_vl_num:\t\t${vlCounts[p.maxVlNum] ?? 'invalid'} (${p.maxVlNum})`,
    `\t\t\tbad_pkey_cntr:\t\t${hex(p.badPkeyCntr)}`,
    `\t\t\tqkey_viol_cntr:\t\t${hex(p.qkeyViolCntr)}`,
    `\t\t\tsm_sl:\t\t\t${p.smSl}`,
    `\t\t\tpkey_tbl_len:\t\t${p.pkeyTblLen}`,
    `\t\t\tgid_tbl_len:\t\t${p.gidTblLen}`,
    `\t\t\tsubnet_timeout:\t\t${p.subnetTimeout}`,
    `\t\t\tinit_type_reply:\t${p.initTypeReply}`,
    `\t\t\tactive_width:\t\t${named(widths, p.activeWidth)}`,
    `\t\t\tactive_speed:\t\t${named(speeds, p.activeSpeed)}`,
    `\t\t\tphys_state:\t\t${named(physStates, p.physState)}`,
  );
  for (const gid of gids) {
    const type = gid.typeName === 'IB' ? '' : `, ${gid.typeName}`;
    lines.push(`\t\t\tGID[${String(gid.index).padStart(3)}]:\t\t${formatIpv6(gid.raw)}${type}`);
  }
  return lines;
}

/** JSON-safe form: 64-bit values as hex strings, GUIDs and GIDs in their text forms. */
export function devInfoJson(info: DevInfo): unknown {
  return JSON.parse(
    JSON.stringify(
      {
        device: info.device.name,
        transport: transportNames[info.device.transportType] ?? 'unknown',
        nodeGuid: formatGuid(info.attributes.nodeGuid),
        sysImageGuid: formatGuid(info.attributes.sysImageGuid),
        attributes: { ...info.attributes, deviceCapFlagNames: flagNames(DeviceCap, info.attributes.deviceCapFlags), atomicCapName: atomicCaps[info.attributes.atomicCap] },
        ports: info.ports.map((p) => ({
          port: p.port,
          ...p.attributes,
          stateName: portStates[p.attributes.state],
          activeMtuBytes: 128 << p.attributes.activeMtu,
          linkLayerName: linkLayers[p.attributes.linkLayer],
          gids: p.gids.map((g) => ({ index: g.index, gid: formatIpv6(g.raw), type: g.typeName, ...(g.ipv4 ? { ipv4: g.ipv4 } : {}) })),
        })),
      },
      (_key, value: unknown) => (typeof value === 'bigint' ? `0x${value.toString(16)}` : value instanceof Uint8Array ? undefined : value),
    ),
  );
}

const usage = `usage: rdma-node devinfo [-d DEVICE] [-i PORT] [-v] [--json]

  -d, --ib-dev=DEVICE   only this device
  -i, --ib-port=PORT    only this port
  -v, --verbose         every attribute, the capability flags, ODP and atomic caps, the GIDs
      --json            print as JSON (always everything)`;

const devinfoOptions: OptionSpec[] = [
  { short: 'd', long: 'ib-dev', value: true },
  { short: 'i', long: 'ib-port', value: true },
  { short: 'v', long: 'verbose' },
  { long: 'json' },
  { short: 'h', long: 'help' },
];

export function devinfoMain(argv: string[]): number {
  // ibv_devinfo's flags, by getopt_long's rules as ibv_devinfo reads them.
  const parsed = parseOptions(argv, devinfoOptions);
  if (parsed.positionals.length > 0) throw new Error(`unexpected argument ${parsed.positionals[0]}\n\n${usage}`);
  if (flag(parsed, 'h')) {
    console.log(usage);
    return 0;
  }
  const name = stringOption(parsed, 'd');
  const port = parsed.values.has('i') ? intOption(parsed, 'i', 0) : undefined;
  const verbose = flag(parsed, 'v');
  const json = flag(parsed, 'json');
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 255)) throw new Error('-i needs a port number');
  const devices = listDevices().filter((d) => name === undefined || d.name === name);
  if (devices.length === 0) {
    console.error(name === undefined ? 'No IB devices found' : `IB device '${name}' wasn't found`);
    return 1;
  }
  const infos = devices.map((d) => collectDevInfo(d, port));
  if (json) console.log(JSON.stringify(infos.map(devInfoJson), null, 2));
  else for (const info of infos) console.log(formatDevInfo(info, verbose).join('\n'));
  return 0;
}
