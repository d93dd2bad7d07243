/** Device and port attributes as queryDevice()/queryPort() return them (camelCase of ibv_device_attr_ex, ibv_port_attr). */
export interface DeviceAttributes {
  fwVer: string;
  nodeGuid: bigint;
  sysImageGuid: bigint;
  maxMrSize: bigint;
  pageSizeCap: bigint;
  vendorId: number;
  vendorPartId: number;
  hwVer: number;
  maxQp: number;
  maxQpWr: number;
  deviceCapFlags: bigint;
  maxSge: number;
  maxSgeRd: number;
  maxCq: number;
  maxCqe: number;
  maxMr: number;
  maxPd: number;
  maxQpRdAtom: number;
  maxEeRdAtom: number;
  maxResRdAtom: number;
  maxQpInitRdAtom: number;
  maxEeInitRdAtom: number;
  atomicCap: number;
  maxEe: number;
  maxRdd: number;
  maxMw: number;
  maxRawIpv6Qp: number;
  maxRawEthyQp: number;
  maxMcastGrp: number;
  maxMcastQpAttach: number;
  maxTotalMcastQpAttach: number;
  maxAh: number;
  maxSrq: number;
  maxSrqWr: number;
  maxSrqSge: number;
  maxPkeys: number;
  localCaAckDelay: number;
  physPortCnt: number;
  odpCaps: { generalCaps: bigint; rcOdpCaps: number; ucOdpCaps: number; udOdpCaps: number };
  xrcOdpCaps: number;
  completionTimestampMask: bigint;
  hcaCoreClock: bigint;
  pciAtomicCaps: { fetchAdd: number; swap: number; compareSwap: number };
  maxDmSize: bigint;
  maxWqTypeRq: number;
  rawPacketCaps: number;
}

export interface PortAttributes {
  state: number;
  maxMtu: number;
  activeMtu: number;
  gidTblLen: number;
  portCapFlags: number;
  portCapFlags2: number;
  maxMsgSz: number;
  badPkeyCntr: number;
  qkeyViolCntr: number;
  pkeyTblLen: number;
  lid: number;
  smLid: number;
  lmc: number;
  maxVlNum: number;
  smSl: number;
  subnetTimeout: number;
  initTypeReply: number;
  activeWidth: number;
  activeSpeed: number;
  physState: number;
  linkLayer: number;
  flags: number;
}

/** Device capability bits of interest (ibv_device_cap_flags). */
export const DeviceCap = {
  RESIZE_MAX_WR: 1,
  BAD_PKEY_CNTR: 1 << 1,
  BAD_QKEY_CNTR: 1 << 2,
  RAW_MULTI: 1 << 3,
  AUTO_PATH_MIG: 1 << 4,
  CHANGE_PHY_PORT: 1 << 5,
  UD_AV_PORT_ENFORCE: 1 << 6,
  CURR_QP_STATE_MOD: 1 << 7,
  SHUTDOWN_PORT: 1 << 8,
  INIT_TYPE: 1 << 9,
  PORT_ACTIVE_EVENT: 1 << 10,
  SYS_IMAGE_GUID: 1 << 11,
  RC_RNR_NAK_GEN: 1 << 12,
  SRQ_RESIZE: 1 << 13,
  N_NOTIFY_CQ: 1 << 14,
  MEM_WINDOW: 1 << 17,
  UD_IP_CSUM: 1 << 18,
  XRC: 1 << 20,
  MEM_MGT_EXTENSIONS: 1 << 21,
  MEM_WINDOW_TYPE_2A: 1 << 23,
  MEM_WINDOW_TYPE_2B: 1 << 24,
  RC_IP_CSUM: 1 << 25,
  RAW_IP_CSUM: 1 << 26,
  MANAGED_FLOW_STEERING: 1 << 29,
} as const;

/** Names of the bits set in `flags`, from a {NAME: bit} table. */
export function flagNames(table: Record<string, number>, flags: number | bigint): string[] {
  if (typeof flags === 'number' ? !Number.isSafeInteger(flags) || flags < 0 : typeof flags !== 'bigint') {
    throw new TypeError('flags must be a non-negative integer or a bigint');
  }
  const value = BigInt(flags);
  return Object.entries(table).filter(([, bit]) => (value & BigInt(bit)) !== 0n).map(([name]) => name);
}
