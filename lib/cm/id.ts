/**
 * The RDMA connection manager (librdmacm): communication IDs that resolve addresses and routes, listen,
 * connect, accept, reject and disconnect, each step a promise settled by its CM event. Every event is
 * also emitted typed ('event'), and the unexpected ones (DISCONNECTED, DEVICE_REMOVAL, ADDR_CHANGE...)
 * under their own names, so a caller can act on them.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

import { CmEventType, PortSpace, QpState, QpType, enumName } from '../verbs/constants';
import { Context } from '../verbs/context';
import { RdmaError, errnoName, rdmaError } from '../core/errors';
import { native, type NativeCmChannel, type NativeCmEvent, type NativeCmId, type NativeConnParam, type NativeSocketAddress } from '../native';
import type { ProtectionDomain } from '../verbs/pd';
import { QueuePair, type AddressVector, type QpInitAttributes } from '../verbs/qp/qp';
import { NativeEmitter, wrapperOf } from '../native/wrapper';
import { gsiQpState } from '../verbs/rxe';
import { XrcDomain, XrcTargetQp } from '../verbs/xrcd';

/** Connection parameters: private data (at most 56 bytes on an RC request, 196 on a reply), responder
 * resources, initiator depth, flow control, retry and RNR retry counts. */
export type ConnParam = NativeConnParam;

export interface CmEvent {
  type: CmEventType;
  /** 'CONNECT_REQUEST', 'REJECTED', ... */
  typeName: string;
  /** 0, a negative errno (resolution errors), or the reject reason (REJECTED). */
  status: number;
  /** The peer's private data (padded by the transport: carry your own length inside). */
  privateData: Buffer;
  responderResources: number;
  initiatorDepth: number;
  retryCount: number;
  rnrRetryCount: number;
  /** UD (UDP port space) and multicast: where to send and with which QPN/QKey. */
  ud?: { ahAttr: AddressVector; qpNum: number; qkey: number };
  /** CONNECT_REQUEST: the ID of the incoming connection, to accept or reject. */
  id?: CmId;
}

const errorEvents = new Set([
  CmEventType.ADDR_ERROR, CmEventType.ROUTE_ERROR, CmEventType.CONNECT_ERROR, CmEventType.UNREACHABLE,
  CmEventType.REJECTED, CmEventType.DEVICE_REMOVAL, CmEventType.MULTICAST_ERROR, CmEventType.DISCONNECTED,
]);

let sharedChannel: NativeCmChannel | undefined;

/**
 * Listening IDs, held until closed: a listener serves connections whether or not the program keeps a
 * reference to it (as a net.Server does), so garbage collection must not close it.
 */
const listening = new Set<CmId>();

/** The environment's event channel, created on first use; watched only while it has IDs. */
function channel(): NativeCmChannel {
  if (sharedChannel === undefined || sharedChannel.closed) {
    sharedChannel = native.createCmChannel((target, event) => wrapperOf<CmId>(target)?.dispatch(event));
  }
  return sharedChannel;
}

/**
 * After a DEVICE_REMOVAL: librdmacm keeps a context of its own on every device and closes one only when
 * it lists the devices again and finds it gone, and the kernel's removal waits for it (rxe cannot revoke
 * a context). The device leaves the list once the IDs on it are closed; until then (30 s at most), every
 * 100 ms librdmacm is made to look.
 */
function releaseRemovedDevice(name: string): void {
  const deadline = Date.now() + 30_000;
  const look = (): void => {
    native.syncCmDevices();
    if (native.listDevices().some((device) => device.name === name) && Date.now() < deadline) setTimeout(look, 100).unref();
  };
  look();
}

/** An IP literal for `host`; a name that does not resolve is an RdmaError EHOSTUNREACH naming `verb`. */
async function toAddress(host: string, verb: string): Promise<string> {
  if (typeof host !== 'string') throw new TypeError('host must be a string');
  if (isIP(host)) return host;
  try {
    return (await lookup(host)).address;
  } catch (error) {
    const failure = rdmaError(verb, 'EHOSTUNREACH', `cannot resolve ${JSON.stringify(host)} (${(error as Error).message})`);
    throw Object.assign(failure, { cause: error });
  }
}

/** A CM event in TS form; a CONNECT_REQUEST's new ID shares the listener's port space. */
function toEvent(event: NativeCmEvent, portSpace: PortSpace): CmEvent {
  const p = event.param;
  return {
    type: event.type,
    typeName: enumName(CmEventType, event.type),
    status: event.status,
    privateData: p.privateData,
    responderResources: p.responderResources,
    initiatorDepth: p.initiatorDepth,
    retryCount: p.retryCount,
    rnrRetryCount: p.rnrRetryCount,
    ud: p.ahAttr ? { ahAttr: p.ahAttr as AddressVector, qpNum: p.qpNum, qkey: p.qkey! } : undefined,
    id: event.id && new CmId(event.id, portSpace),
  };
}

/**
 * Refuses `verb` on an ID bound to a port whose QP1 is in ERR, which rxe can leave so for good (see the
 * README): no connection management message goes in or out there, so a connect would time out and a
 * listener would never hear of a request. Devices the kernel cannot say this of (no QP1) pass.
 */
function requireLiveGsi(handle: NativeCmId, verb: string): void {
  const device = handle.context?.deviceName;
  if (device === undefined || handle.portNum === 0) return;
  let state: QpState;
  try {
    state = gsiQpState(device, handle.portNum);
  } catch {
    return;
  }
  if (state === QpState.ERR) {
    throw rdmaError(verb, 'EIO', `QP1 of ${device} port ${handle.portNum}, which all connection management goes through, is in the error state: ` +
      `no connection can be made through it until the device is deleted and added again (rdma-node rxe del/add); rxe leaves it so when a connection is closed while its link is down`);
  }
}

/** The error for a CM event that ends an operation: REJECTED is ECONNREFUSED, resolution errors keep their errno. */
function eventError(verb: string, event: CmEvent): RdmaError {
  let error: RdmaError;
  if (event.type === CmEventType.REJECTED) error = rdmaError(verb, 'ECONNREFUSED', `rejected by the peer (reason ${event.status})`);
  else if (event.type === CmEventType.DISCONNECTED) error = rdmaError(verb, 'ECONNRESET', 'disconnected');
  else if (event.type === CmEventType.DEVICE_REMOVAL) error = rdmaError(verb, 'ENODEV', 'the device was removed');
  else if (event.status < 0) {
    const errno = -event.status;
    error = new RdmaError(`${verb} failed: ${event.typeName} (errno ${errno})`, errnoName(errno), errno, verb);
  } else error = rdmaError(verb, 'EHOSTUNREACH', `${event.typeName} (status ${event.status})`);
  Object.defineProperty(error, 'cmEvent', { value: { type: event.type, typeName: event.typeName, status: event.status, privateData: event.privateData }, enumerable: true });
  return error;
}

/**
 * A communication ID. Events: 'event' (every CmEvent), 'connection' (CmId of an incoming request, and
 * its event), and kebab-case names of the others ('disconnected', 'device-removal', 'addr-change',
 * 'timewait-exit', 'established', ...).
 */
export class CmId extends NativeEmitter<NativeCmId> {
  readonly portSpace: PortSpace;
  #peerDisconnected = false;
  /** The device named by a DEVICE_REMOVAL of this ID. */
  #removedDevice: string | undefined;
  #waiter: { accept: Set<CmEventType>; resolve: (event: CmEvent) => void; reject: (error: Error) => void; verb: string } | undefined;

  /** @internal Use CmId.create(), or take it from a 'connection' event. */
  constructor(handle: NativeCmId, portSpace = PortSpace.TCP) {
    super(handle);
    this.portSpace = portSpace;
  }

  static create(portSpace: PortSpace = PortSpace.TCP): CmId {
    return new CmId(channel().createId(portSpace), portSpace);
  }

  /** The device the ID is bound to, once an address is resolved or bound (a borrowed Context). */
  get context(): Context | undefined {
    const handle = this.handle.context;
    return handle === null ? undefined : Context.of(handle);
  }

  get portNum(): number {
    return this.handle.portNum;
  }

  get localAddress(): NativeSocketAddress | undefined {
    return this.handle.localAddress ?? undefined;
  }

  get remoteAddress(): NativeSocketAddress | undefined {
    return this.handle.remoteAddress ?? undefined;
  }

  async bind(host: string, port = 0): Promise<void> {
    this.handle.bindAddr(await toAddress(host, 'rdma_bind_addr'), port);
  }

  /** Resolves the destination to a local device and port (ADDR_RESOLVED). */
  async resolveAddr(host: string, port: number, options: { source?: string; timeoutMs?: number } = {}): Promise<void> {
    const [source, destination] = await Promise.all([options.source && toAddress(options.source, 'rdma_resolve_addr'), toAddress(host, 'rdma_resolve_addr')]);
    const timeoutMs = options.timeoutMs ?? 2000;
    await this.#expect('rdma_resolve_addr', [CmEventType.ADDR_RESOLVED], timeoutMs, () =>
      this.handle.resolveAddr(source || null, destination, port, timeoutMs));
  }

  async resolveRoute(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 2000;
    await this.#expect('rdma_resolve_route', [CmEventType.ROUTE_RESOLVED], timeoutMs, () => this.handle.resolveRoute(timeoutMs));
  }

  /** Starts listening; incoming requests arrive as 'connection' events. */
  listen(backlog = 128): void {
    requireLiveGsi(this.handle, 'rdma_listen');
    this.handle.listen(backlog);
    listening.add(this);
  }

  /** Lets the process exit while this ID is open (as socket.unref()); ref() undoes it. */
  unref(): this {
    this.handle.setRef(false);
    return this;
  }

  ref(): this {
    this.handle.setRef(true);
    return this;
  }

  /** Connects (after resolveRoute); resolves with the ESTABLISHED event (UDP: with the peer's QPN/QKey). */
  connect(param: ConnParam = {}, options: { timeoutMs?: number } = {}): Promise<CmEvent> {
    return this.#expect('rdma_connect', [CmEventType.ESTABLISHED], options.timeoutMs ?? 10_000, () => {
      requireLiveGsi(this.handle, 'rdma_connect');
      this.handle.connect(param);
    });
  }

  /** Accepts an incoming request; resolves when the connection is ESTABLISHED (TCP) or at once (UDP). */
  async accept(param: ConnParam = {}, options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.portSpace === PortSpace.UDP) {
      this.handle.accept(param);
      return;
    }
    await this.#expect('rdma_accept', [CmEventType.ESTABLISHED], options.timeoutMs ?? 10_000, () => this.handle.accept(param));
  }

  /** Refuses an incoming request; the peer's connect() rejects with ECONNREFUSED carrying `privateData`. */
  reject(privateData?: Uint8Array): void {
    this.handle.reject(privateData);
  }

  /**
   * Disconnects; resolves on this side's DISCONNECTED event (which needs the peer's answer: a peer that
   * saw DISCONNECTED answers when it disconnects or closes its ID). After the peer disconnected first,
   * this only sends the answer.
   */
  async disconnect(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#peerDisconnected) {
      this.handle.disconnect();
      return;
    }
    await this.#expect('rdma_disconnect', [CmEventType.DISCONNECTED], options.timeoutMs ?? 5000, () => this.handle.disconnect());
  }

  /** Joins a multicast group (UDP port space, after resolveAddr/bind); resolves with the group's address info. */
  joinMulticast(host: string, options: { timeoutMs?: number } = {}): Promise<CmEvent> {
    return this.#expect('rdma_join_multicast', [CmEventType.MULTICAST_JOIN], options.timeoutMs ?? 5000, () => this.handle.joinMulticast(host));
  }

  leaveMulticast(host: string): void {
    this.handle.leaveMulticast(host);
  }

  setReuseAddr(reuse = true): void {
    this.handle.setReuseAddr(reuse);
  }

  /**
   * A QP owned by this ID (the CM moves it through its states); `pd` must come from `this.context`.
   * UDP IDs get UD QPs, the others RC, unless `qpType` says otherwise. An XRC initiator (XRC_SEND, on an
   * RDMA_PS_IB ID, as rdma_xclient makes it) has no receive CQ; the peer's XRC SRQ number travels in the
   * private data of its accept.
   */
  createQp(pd: ProtectionDomain, attributes: QpInitAttributes): QueuePair {
    const { qpType = this.portSpace === PortSpace.UDP ? QpType.UD : QpType.RC } = attributes;
    const { sendCq, recvCq = qpType === QpType.XRC_SEND ? undefined : sendCq, srq, ...rest } = attributes;
    const handle = this.handle.createQp(pd.handle, sendCq.handle, recvCq?.handle, { ...rest, qpType, srq: srq?.handle });
    return new QueuePair(handle, qpType, pd, sendCq, recvCq, srq);
  }

  /**
   * An XRC target QP on `xrcd` owned by this ID (rdma_xserver's QP, on an RDMA_PS_IB ID); the accept's
   * private data tells the initiator the number of the XRC SRQ to send to.
   */
  createXrcTargetQp(xrcd: XrcDomain): XrcTargetQp {
    if (!(xrcd instanceof XrcDomain)) throw new TypeError('xrcd must be an XrcDomain made by context.openXrcd()');
    return new XrcTargetQp(this.handle.createXrcTargetQp(xrcd.handle), xrcd);
  }

  /** Destroys the ID (and its QP); a pending operation rejects with ECANCELED. Idempotent. */
  override close(): void {
    if (this.handle.closed) return;
    listening.delete(this);
    this.handle.close();
    this.#settle(undefined, rdmaError('rdma_destroy_id', 'ECANCELED', 'the CM ID was closed'));
    if (this.#removedDevice !== undefined) releaseRemovedDevice(this.#removedDevice);
  }

  /** @internal Called by the channel for every event of this ID. */
  dispatch(raw: NativeCmEvent): void {
    const event = toEvent(raw, this.portSpace);
    if (event.type === CmEventType.DISCONNECTED) this.#peerDisconnected = true;
    if (event.type === CmEventType.DEVICE_REMOVAL) this.#removedDevice = this.handle.context?.deviceName;
    const waiter = this.#waiter;
    if (waiter && waiter.accept.has(event.type)) this.#settle(event);
    else if (waiter && errorEvents.has(event.type)) this.#settle(undefined, eventError(waiter.verb, event));
    this.emit('event', event);
    if (event.type === CmEventType.CONNECT_REQUEST) this.emit('connection', event.id, event);
    else this.emit(event.typeName.toLowerCase().replace(/_/g, '-'), event);
  }

  #settle(event?: CmEvent, error?: Error): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter && error) waiter.reject(error);
    else if (waiter && event) waiter.resolve(event);
  }

  /** Starts an operation and waits for its outcome event; one operation at a time per ID. */
  #expect(verb: string, accept: CmEventType[], timeoutMs: number, start: () => void): Promise<CmEvent> {
    if (this.#waiter) return Promise.reject(new TypeError(`${this.#waiter.verb} is still in progress on this CM ID`));
    return new Promise<CmEvent>((resolve, reject) => {
      const timer = setTimeout(() => this.#settle(undefined, rdmaError(verb, 'ETIMEDOUT', `no answer in ${timeoutMs} ms`)), timeoutMs);
      this.#waiter = {
        accept: new Set(accept),
        verb,
        resolve: (event) => (clearTimeout(timer), resolve(event)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      };
      try {
        start();
      } catch (error) {
        this.#settle(undefined, error as Error);
      }
    });
  }
}
