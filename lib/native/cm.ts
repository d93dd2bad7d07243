/** The connection manager (native/cm): librdmacm ids and their event channel. */
import type { NativeResource } from './resource';
import type { NativeContext, NativeCq, NativePd, NativeQp, NativeQpInitAttr, NativeXrcd } from './verbs';

export interface NativeConnParam {
  privateData?: Uint8Array;
  responderResources?: number;
  initiatorDepth?: number;
  flowControl?: number;
  retryCount?: number;
  rnrRetryCount?: number;
  srq?: number;
  qpNum?: number;
}

export interface NativeCmEvent {
  type: number;
  name: string;
  status: number;
  /** Connection parameters (TCP/IB port spaces) or UD parameters (UDP). */
  param: Required<NativeConnParam> & { privateData: Buffer; ahAttr?: Record<string, unknown>; qkey?: number };
  /** CONNECT_REQUEST: the ID of the incoming connection. */
  id?: NativeCmId;
}

export interface NativeSocketAddress {
  address: string;
  port: number;
}

export interface NativeCmChannel extends NativeResource {
  createId(portSpace: number): NativeCmId;
}

export interface NativeCmId extends NativeResource {
  bindAddr(address: string, port: number): void;
  resolveAddr(source: string | null, destination: string, port: number, timeoutMs: number): void;
  resolveRoute(timeoutMs: number): void;
  listen(backlog: number): void;
  connect(param: NativeConnParam): void;
  accept(param: NativeConnParam): void;
  reject(privateData?: Uint8Array): void;
  disconnect(): void;
  createQp(pd: NativePd, sendCq: NativeCq, recvCq: NativeCq | undefined, attributes: NativeQpInitAttr): NativeQp;
  createXrcTargetQp(xrcd: NativeXrcd): NativeQp;
  joinMulticast(address: string): void;
  leaveMulticast(address: string): void;
  setReuseAddr(reuse: boolean): void;
  readonly context: NativeContext | null;
  readonly portNum: number;
  readonly localAddress: NativeSocketAddress | null;
  readonly remoteAddress: NativeSocketAddress | null;
  setRef(referenced: boolean): void;
}

/** The binding's functions for this area. */
export interface NativeCmFunctions {
  createCmChannel(listener: (target: NativeCmId, event: NativeCmEvent) => void): NativeCmChannel;
  /** librdmacm lists the devices again, closing its context on any that is gone (rdma_get_devices). */
  syncCmDevices(): void;
}
