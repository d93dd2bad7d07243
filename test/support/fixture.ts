/**
 * Shared set-up for device tests. There is no skipping here: a device test run without a device fails,
 * so a green run always means the tests talked to a real RDMA device.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';

import { Access, QpState, QpType, createLoopbackPair, listDevices, openDevice, type Context, type LoopbackOptions, type LoopbackPair, type ProtectionDomain } from '../../lib';

export function deviceName(): string {
  const name = process.env.RDMA_NODE_DEVICE ?? listDevices()[0]?.name;
  if (name === undefined) throw new Error('device tests need an RDMA device (run them with `npm test`, which uses the Soft-RoCE VM)');
  return name;
}

export function open(): Context {
  return openDevice(deviceName());
}

export const remoteAccess = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;

/** A context with a connected loopback RC pair, closed (everything) when disposed. */
export function pair(options: LoopbackOptions = {}): { context: Context; pair: LoopbackPair } & Disposable {
  const context = open();
  try {
    const loop = createLoopbackPair(context, { maxSendWr: 64, maxRecvWr: 64, maxSendSge: 4, maxRecvSge: 4, ...options });
    return { context, pair: loop, [Symbol.dispose]: () => context.close() };
  } catch (error) {
    context.close();
    throw error;
  }
}

export const random = (size: number): Buffer => randomBytes(size);

/** The QKey of the UD QPs made by udQp(). */
export const QKEY = 0x11111111;

/** A UD QP in RTS on port 1 with its own CQ (with a completion channel, for take()). */
export function udQp(context: Context, pd: ProtectionDomain) {
  const cq = context.createCq(64, { channel: true });
  const qp = pd.createQp({ sendCq: cq, qpType: QpType.UD, maxSendWr: 16, maxRecvWr: 16 });
  qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qkey: QKEY });
  qp.modify({ qpState: QpState.RTR });
  qp.modify({ qpState: QpState.RTS, sqPsn: 0 });
  return { cq, qp };
}

export const TIMEOUT = { timeoutMs: 30_000 };

/** A process's objects in the kernel's RDMA resource tracking (`rdma -j resource show TYPE`), by type. */
export function kernelObjects(pid = process.pid): Record<'pd' | 'cq' | 'qp' | 'mr', number> {
  const count = (type: string): number => {
    const rows = JSON.parse(execFileSync('rdma', ['-j', 'resource', 'show', type], { encoding: 'utf8' })) as { pid?: number }[];
    return rows.filter((row) => row.pid === pid).length;
  };
  return { pd: count('pd'), cq: count('cq'), qp: count('qp'), mr: count('mr') };
}

/** How many file descriptors this process has open. */
export const openFds = (): number => readdirSync('/proc/self/fd').length;
