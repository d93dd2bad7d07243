/**
 * Where RDMA can run: on this host when libibverbs sees a device, otherwise inside the Soft-RoCE VM.
 * Commands that need a device (the demo, the device tests) re-run themselves in the VM when needed.
 */
import { listDevices } from '../verbs/device';
import { runInVm, type VmOptions } from './vm';
import { interruptible } from './vm/interrupt';

export function hostHasDevice(): boolean {
  return listDevices().length > 0;
}

/**
 * Runs `node <script> ...args` in the VM with the same working directory and returns its exit status.
 * RDMA_NODE_IN_VM tells the re-run that it must not try the VM again. `options.hosts: 2` runs it in a
 * pair of linked VMs (the pair's RDMA_NODE_DEVICE, rxe1, wins over this host's).
 */
export async function rerunInVm(script: string, args: string[], timeoutMs: number, options: VmOptions = {}): Promise<number> {
  return interruptible((signal) => runInVm([process.execPath, script, ...args], {
    cwd: process.cwd(),
    env: { RDMA_NODE_IN_VM: '1', ...(process.env.RDMA_NODE_DEVICE ? { RDMA_NODE_DEVICE: process.env.RDMA_NODE_DEVICE } : {}) },
    timeoutMs,
    signal,
    ...options,
  }));
}

export const insideVm = (): boolean => process.env.RDMA_NODE_IN_VM === '1';
