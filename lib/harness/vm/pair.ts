/**
 * Two VMs joined by a private link: what each one gets (its link, its environment), and how a command
 * running in one of them learns its role. The link is a pair of UDP ports on 127.0.0.1, one per qemu
 * process, each sending to the other's: it exists only between them.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { GUEST_JOB_DIR } from './job';
import type { Link } from './qemu';

export const PAIR_SUBNET = '10.77.0';
/** The rxe device on the link's NIC in each VM (eth0 keeps no rxe device in a pair). */
export const PAIR_DEVICE = 'rxe1';

export interface PairHost {
  index: 0 | 1;
  link: Link;
  /** What the command sees, on top of the caller's environment. */
  env: Record<string, string>;
}

/**
 * What the two VMs of one pair share and nobody else has, made afresh for each pair: an ssh key (host 0's
 * mpirun logs into host 1 with it, lib/harness/vm/services.ts) and a munge key (Slurm's daemons trust each
 * other by it). They travel in the VMs' environment, base64.
 */
export function pairSecrets(): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'rdma-node-pair-'));
  try {
    const made = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rdma-node pair', '-f', join(dir, 'id')], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`ssh-keygen failed (is openssh-client installed? rdma-node setup installs it): ${made.stderr ?? made.error}`);
    return {
      RDMA_NODE_PAIR_SSH_KEY: readFileSync(join(dir, 'id')).toString('base64'),
      RDMA_NODE_PAIR_SSH_PUB: readFileSync(join(dir, 'id.pub'), 'utf8').trim(),
      RDMA_NODE_PAIR_MUNGE_KEY: randomBytes(1024).toString('base64'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Host 0 (10.77.0.1) receives its link's frames on `ports[0]`, host 1 (10.77.0.2) on `ports[1]`. */
export function pairHosts(ports: [number, number], secrets: Record<string, string> = {}): [PairHost, PairHost] {
  const host = (index: 0 | 1): PairHost => {
    const address = `${PAIR_SUBNET}.${index + 1}`;
    const peer = `${PAIR_SUBNET}.${2 - index}`;
    return {
      index,
      link: { localPort: ports[index], peerPort: ports[1 - index]!, mac: `52:54:00:77:00:0${index + 1}`, address: `${address}/24`, device: PAIR_DEVICE },
      env: {
        RDMA_NODE_HOSTS: '2',
        RDMA_NODE_HOST_INDEX: String(index),
        RDMA_NODE_ADDRESS: address,
        RDMA_NODE_PEER: peer,
        RDMA_NODE_DEVICE: PAIR_DEVICE,
        ...secrets,
      },
    };
  };
  return [host(0), host(1)];
}

export interface HostRole {
  index: 0 | 1;
  /** Host 0 plays the server in the two-host tests, host 1 the client. */
  server: boolean;
  address: string;
  peer: string;
  device: string;
}

/** The role of this host in a pair, from the environment pairHosts() gives it. */
export function hostRole(env: NodeJS.ProcessEnv = process.env): HostRole {
  const index = env.RDMA_NODE_HOST_INDEX;
  const { RDMA_NODE_ADDRESS: address, RDMA_NODE_PEER: peer, RDMA_NODE_DEVICE: device } = env;
  if ((index !== '0' && index !== '1') || !address || !peer || !device) {
    throw new Error('not one of a pair of hosts (RDMA_NODE_HOST_INDEX, RDMA_NODE_ADDRESS, RDMA_NODE_PEER and RDMA_NODE_DEVICE are set by `rdma-node vm --hosts 2`)');
  }
  return { index: Number(index) as 0 | 1, server: index === '0', address, peer, device };
}

/** Two distinct UDP ports on 127.0.0.1 that were free a moment ago. */
export async function freeUdpPorts(): Promise<[number, number]> {
  const sockets = [createSocket('udp4'), createSocket('udp4')];
  try {
    const ports = await Promise.all(sockets.map((socket) => new Promise<number>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve(socket.address().port));
    })));
    return [ports[0]!, ports[1]!];
  } finally {
    for (const socket of sockets) socket.close();
  }
}

/** The file in a guest's job directory by which it asks for the other VM's qemu to be killed. */
const KILL_PEER_FILE = 'kill-peer';

/**
 * In a VM of a pair: asks the host machine to SIGKILL the other VM's qemu, a host that vanishes without a
 * word (no FIN, no disconnect, no more packets). That VM's run counts as passed: its side of the test is to
 * be killed. Used by the two-host tests of a dead peer (test-runner.ts gives them a pair of their own).
 */
export function killPeerVm(): void {
  writeFileSync(`${GUEST_JOB_DIR}/${KILL_PEER_FILE}`, `${hostRole().index}\n`);
}

/** On the host machine: whether the guest with this job directory asked for its peer's death (once). */
export function peerKillRequested(jobDir: string): boolean {
  const file = join(jobDir, KILL_PEER_FILE);
  if (!existsSync(file)) return false;
  rmSync(file, { force: true });
  return true;
}
