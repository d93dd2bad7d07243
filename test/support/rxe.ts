/** Soft-RoCE devices a test makes for itself (in the VM, as root), so that breaking them spares rxe0. */
import { execFileSync } from 'node:child_process';

import { PortState, addRxe, openDevice } from '../../lib';
import { native } from '../../lib/native';
import { ours, start, waitFor } from './processes';

export const ip = (...args: string[]): void => void execFileSync('ip', args);

/**
 * Removes `name` from another process (the kernel waits for this one to let go of it) while librdmacm,
 * which opened every device once this process used it, is made to look (it closes its context then).
 */
export async function removeRxe(name: string): Promise<void> {
  const removal = start(ours('rxe', 'del', name), 60_000);
  let done = false;
  void removal.done.then(() => (done = true));
  await waitFor(() => (native.syncCmDevices(), done), `${name} to go`, 30_000);
}

/** Until `device`'s port is ACTIVE with the RoCE GID of `address` (both go when its netdev goes down). */
export async function rxeReady(device: string, address: string): Promise<void> {
  const ready = (): boolean => {
    using context = openDevice(device);
    return context.queryPort(1).state === PortState.ACTIVE && context.gidTable().some((entry) => entry.ipv4 === address);
  };
  await waitFor(ready, `${device} to be ACTIVE with ${address}`, 30_000);
}

/** An rxe device on one end of a veth pair of its own, with `address`/24 on it; `close()` removes both. */
export class ScratchRxe {
  readonly netdev: string;

  private constructor(readonly name: string, readonly address: string) {
    this.netdev = `${name}v`;
  }

  static async create(name: string, address: string): Promise<ScratchRxe> {
    const scratch = new ScratchRxe(name, address);
    ip('link', 'add', scratch.netdev, 'type', 'veth', 'peer', 'name', `${scratch.netdev}p`);
    ip('addr', 'add', `${address}/24`, 'dev', scratch.netdev);
    ip('link', 'set', `${scratch.netdev}p`, 'up');
    scratch.setLink('up');
    addRxe(scratch.netdev, { name });
    await rxeReady(name, address);
    return scratch;
  }

  setLink(state: 'up' | 'down'): void {
    ip('link', 'set', this.netdev, state);
  }

  async close(): Promise<void> {
    await removeRxe(this.name);
    ip('link', 'del', this.netdev);
  }
}

/** The state of `device`'s QP1 (the GSI QP all connection management goes through), as `rdma res` shows it. */
export function gsiState(device: string): string {
  const rows = JSON.parse(execFileSync('rdma', ['-j', 'resource', 'show', 'qp', 'link', `${device}/1`], { encoding: 'utf8' })) as { lqpn: number; state: string }[];
  const gsi = rows.find((row) => row.lqpn === 1);
  if (!gsi) throw new Error(`${device} has no QP1 in rdma res`);
  return gsi.state;
}
