/**
 * Where RDMA can run: on this host when libibverbs sees a device, otherwise inside the Soft-RoCE VM.
 * Commands that need a device (the demo, the device tests) re-run themselves in the VM when needed.
 */
import { listDevices } from './device';
import { runInVm } from './vm';

export function hostHasDevice(): boolean {
  return listDevices().length > 0;
}

/**
 * Runs `node <script> ...args` in the VM with the same working directory and returns its exit status.
 * RDMA_NODE_IN_VM tells the re-run that it must not try the VM again.
 */
export async function rerunInVm(script: string, args: string[], timeoutMs: number): Promise<number> {
  return runInVm([process.execPath, script, ...args], {
    cwd: process.cwd(),
    env: { RDMA_NODE_IN_VM: '1', ...(process.env.RDMA_NODE_DEVICE ? { RDMA_NODE_DEVICE: process.env.RDMA_NODE_DEVICE } : {}) },
    timeoutMs,
  });
}

export const insideVm = (): boolean => process.env.RDMA_NODE_IN_VM === '1';
