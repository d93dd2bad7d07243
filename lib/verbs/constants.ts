/** Values of the libibverbs enums (verbs.h), with their names for printing. */

export const Access = {
  LOCAL_WRITE: 1,
  REMOTE_WRITE: 1 << 1,
  REMOTE_READ: 1 << 2,
  REMOTE_ATOMIC: 1 << 3,
  MW_BIND: 1 << 4,
  ZERO_BASED: 1 << 5,
  ON_DEMAND: 1 << 6,
  HUGETLB: 1 << 7,
  RELAXED_ORDERING: 1 << 20,
} as const;

export const SendFlags = { FENCE: 1, SIGNALED: 2, SOLICITED: 4, INLINE: 8, IP_CSUM: 16 } as const;

export enum WrOpcode {
  RDMA_WRITE = 0,
  RDMA_WRITE_WITH_IMM = 1,
  SEND = 2,
  SEND_WITH_IMM = 3,
  RDMA_READ = 4,
  ATOMIC_CMP_AND_SWP = 5,
  ATOMIC_FETCH_AND_ADD = 6,
  LOCAL_INV = 7,
  BIND_MW = 8,
  SEND_WITH_INV = 9,
}

export enum WcOpcode {
  SEND = 0,
  RDMA_WRITE = 1,
  RDMA_READ = 2,
  COMP_SWAP = 3,
  FETCH_ADD = 4,
  BIND_MW = 5,
  LOCAL_INV = 6,
  TSO = 7,
  RECV = 128,
  RECV_RDMA_WITH_IMM = 129,
}

export const WcFlags = { GRH: 1, WITH_IMM: 2, IP_CSUM_OK: 4, WITH_INV: 8, TM_SYNC_REQ: 16, TM_MATCH: 32, TM_DATA_VALID: 64 } as const;

export enum WcStatus {
  SUCCESS = 0,
  LOC_LEN_ERR,
  LOC_QP_OP_ERR,
  LOC_EEC_OP_ERR,
  LOC_PROT_ERR,
  WR_FLUSH_ERR,
  MW_BIND_ERR,
  BAD_RESP_ERR,
  LOC_ACCESS_ERR,
  REM_INV_REQ_ERR,
  REM_ACCESS_ERR,
  REM_OP_ERR,
  RETRY_EXC_ERR,
  RNR_RETRY_EXC_ERR,
  LOC_RDD_VIOL_ERR,
  REM_INV_RD_REQ_ERR,
  REM_ABORT_ERR,
  INV_EECN_ERR,
  INV_EEC_STATE_ERR,
  FATAL_ERR,
  RESP_TIMEOUT_ERR,
  GENERAL_ERR,
  TM_ERR,
  TM_RNDV_INCOMPLETE,
}

export enum QpState { RESET = 0, INIT, RTR, RTS, SQD, SQE, ERR }

/** ibv_qp_type. RAW_PACKET, XRC_SEND and XRC_RECV need hardware (mlx4/mlx5 and other XRC providers); rxe refuses them. */
export enum QpType { RC = 2, UC = 3, UD = 4, RAW_PACKET = 8, XRC_SEND = 9, XRC_RECV = 10 }

export enum Mtu { MTU_256 = 1, MTU_512, MTU_1024, MTU_2048, MTU_4096 }

export enum PortState { NOP = 0, DOWN, INIT, ARMED, ACTIVE, ACTIVE_DEFER }

export enum NodeType { UNKNOWN = -1, CA = 1, SWITCH, ROUTER, RNIC, USNIC, USNIC_UDP, UNSPECIFIED }

export enum TransportType { UNKNOWN = -1, IB = 0, IWARP, USNIC, USNIC_UDP, UNSPECIFIED }

export enum GidType { IB = 0, ROCE_V1 = 1, ROCE_V2 = 2 }

export enum LinkLayer { UNSPECIFIED = 0, INFINIBAND = 1, ETHERNET = 2 }

export enum AtomicCap { NONE = 0, HCA = 1, GLOB = 2 }

export enum AsyncEventType {
  CQ_ERR = 0,
  QP_FATAL,
  QP_REQ_ERR,
  QP_ACCESS_ERR,
  COMM_EST,
  SQ_DRAINED,
  PATH_MIG,
  PATH_MIG_ERR,
  DEVICE_FATAL,
  PORT_ACTIVE,
  PORT_ERR,
  LID_CHANGE,
  PKEY_CHANGE,
  SM_CHANGE,
  SRQ_ERR,
  SRQ_LIMIT_REACHED,
  QP_LAST_WQE_REACHED,
  CLIENT_REREGISTER,
  GID_CHANGE,
  WQ_FATAL,
}

/** ODP capability bits (ibv_odp_general_caps, ibv_odp_transport_cap_bits). */
export const OdpCaps = { SUPPORT: 1, SUPPORT_IMPLICIT: 2 } as const;
export const OdpTransportCaps = { SEND: 1, RECV: 2, WRITE: 4, READ: 8, ATOMIC: 16, SRQ_RECV: 32 } as const;

/** A UD receive buffer starts with room for the 40-byte Global Route Header, whether or not one came. */
export const UD_GRH_BYTES = 40;

/** rdma_cm port spaces. */
export enum PortSpace { IPOIB = 0x0002, TCP = 0x0106, UDP = 0x0111, IB = 0x013f }

/** rdma_cm event types. */
export enum CmEventType {
  ADDR_RESOLVED = 0,
  ADDR_ERROR,
  ROUTE_RESOLVED,
  ROUTE_ERROR,
  CONNECT_REQUEST,
  CONNECT_RESPONSE,
  CONNECT_ERROR,
  UNREACHABLE,
  REJECTED,
  ESTABLISHED,
  DISCONNECTED,
  DEVICE_REMOVAL,
  MULTICAST_JOIN,
  MULTICAST_ERROR,
  ADDR_CHANGE,
  TIMEWAIT_EXIT,
}

/** The name of a numeric enum value, or its number in brackets when unknown. */
export function enumName(table: Record<number, string>, value: number): string {
  return table[value] ?? `(${value})`;
}

/** MTU enum → bytes (IBV_MTU_1024 → 1024). */
export function mtuBytes(mtu: Mtu): number {
  return 128 << mtu;
}

/** Bytes → the largest MTU enum not above them; undefined below 256. */
export function mtuFromBytes(bytes: number): Mtu | undefined {
  for (let mtu = Mtu.MTU_4096; mtu >= Mtu.MTU_256; mtu--) if (mtuBytes(mtu) <= bytes) return mtu;
  return undefined;
}
