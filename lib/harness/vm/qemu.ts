/** Boots qemu (TCG: this host's /dev/kvm does not run stock kernels) and streams the guest console. */
import { spawn } from 'node:child_process';

import { LINK_PARAMETER, NONCE_PARAMETER, parseConsoleLine } from './guest-init';
import type { Log } from './paths';

/**
 * A second NIC joined to another VM's: each qemu sends the NIC's frames as UDP datagrams from
 * 127.0.0.1:localPort to the other's 127.0.0.1:peerPort. (qemu's TCP socket netdev leaves Nagle on: a
 * ping-pong over it took 45 ms per round trip against 3 ms over UDP.)
 */
export interface Link {
  localPort: number;
  peerPort: number;
  mac: string;
  /** The guest's address on the link, with its prefix (10.77.0.1/24). */
  address: string;
  /** The rxe device the guest creates on the link's NIC. */
  device: string;
}

export interface Boot {
  vmlinuz: string;
  initramfs: string;
  jobDir: string;
  /** Shared read-write at the same path inside (the guest reads the path from jobDir/project). */
  projectDir?: string;
  memoryMiB: number;
  cpus: number;
  timeoutMs: number;
  /** Stops the VM (SIGKILL) when aborted. */
  signal?: AbortSignal;
  link?: Link;
  /** Starts every marker line of this run (see guest-init). */
  nonce: string;
  /** Receives the guest's console output line by line (markers removed). */
  output: (line: string) => void;
  log: Log;
}

export interface BootResult {
  /** The guest reached the point of running the command. */
  ready: boolean;
  /** Exit status reported on the console, if any. */
  status?: number;
  /** Why the guest stopped early, if it said so: init's failure marker or a kernel panic. */
  failure?: string;
  /** The last console lines, to explain a guest that stopped without saying why. */
  tail: string[];
  /** The console up to the point of running the command (kept when a boot fails). */
  bootLog: string[];
  timedOut: boolean;
  /** Stopped through Boot.signal. */
  aborted: boolean;
}

export function qemuArgs(boot: Boot): string[] {
  // qemu option values escape a comma by doubling it.
  const share = (path: string, tag: string, readonly: boolean) =>
    ['-virtfs', `local,path=${path.replace(/,/g, ',,')},mount_tag=${tag},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`];
  // No protection keys: V8 gives Node's threads a PKRU value of their own, Linux rewrites PKRU whenever they
  // switch with rxe's kernel threads, and under TCG every rewrite flushes the emulated TLB (measured: ping-pong
  // latency from Node doubled). This host's CPU has no PKU either.
  const link = boot.link;
  return [
    '-accel', 'tcg,thread=multi', '-cpu', 'max,pku=off', '-smp', String(boot.cpus), '-m', String(boot.memoryMiB),
    '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot',
    '-kernel', boot.vmlinuz, '-initrd', boot.initramfs,
    '-append', `console=ttyS0 quiet loglevel=1 panic=-1 ${NONCE_PARAMETER}=${boot.nonce}${link ? ` ${LINK_PARAMETER}=${link.mac},${link.address},${link.device}` : ''}`,
    ...share('/', 'hostroot', true),
    ...share(boot.jobDir, 'job', false),
    ...(boot.projectDir ? share(boot.projectDir, 'project', false) : []),
    '-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0',
    ...(link ? ['-netdev', `socket,id=n1,udp=127.0.0.1:${link.peerPort},localaddr=127.0.0.1:${link.localPort}`, '-device', `virtio-net-pci,netdev=n1,mac=${link.mac}`] : []),
  ];
}

export function bootQemu(boot: Boot): Promise<BootResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    // setpriv (util-linux): qemu dies with this process, however it ends, instead of spinning on alone.
    // Its own process group: a Ctrl-C reaches this process, which stops qemu, not qemu directly.
    const qemu = spawn('setpriv', ['--pdeathsig', 'KILL', 'qemu-system-x86_64', ...qemuArgs(boot)], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const result: BootResult = { ready: false, tail: [], bootLog: [], timedOut: false, aborted: false };
    const abort = (): void => {
      result.aborted = true;
      qemu.kill('SIGKILL');
    };
    if (boot.signal?.aborted) abort();
    boot.signal?.addEventListener('abort', abort);
    let pending = '';
    let errors = '';
    const timer = setTimeout(() => {
      result.timedOut = true;
      qemu.kill('SIGKILL');
    }, boot.timeoutMs);
    const onLine = (raw: string): void => {
      const { text, marker } = parseConsoleLine(raw.replace(/\r/g, ''), boot.nonce);
      // After the status only power-off noise follows.
      if (result.status !== undefined) return;
      if (text || !marker) {
        boot.output(text);
        result.tail = [...result.tail.slice(-4), text];
        if (!result.ready && result.bootLog.length < 5000) result.bootLog.push(text);
        const panic = /Kernel panic - not syncing: (.*)/.exec(text);
        if (panic) result.failure ??= `kernel panic: ${panic[1]}`;
      }
      if (marker?.kind === 'ready') {
        result.ready = true;
        boot.log(`${marker.detail || 'rxe0'} up after ${((Date.now() - started) / 1000).toFixed(1)} s; running the command`);
      } else if (marker?.kind === 'exit') result.status = marker.status;
      else if (marker?.kind === 'failed') result.failure = marker.reason;
    };
    qemu.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      lines.forEach(onLine);
    });
    qemu.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
    const settled = (): void => {
      clearTimeout(timer);
      boot.signal?.removeEventListener('abort', abort);
    };
    qemu.on('error', (error) => {
      settled();
      reject(new Error(`cannot start qemu-system-x86_64 (${error.message}); run 'bash scripts/setup.sh'`));
    });
    qemu.on('close', (code) => {
      settled();
      if (pending) onLine(pending);
      if (!result.ready && !result.timedOut && !result.aborted && code !== 0) reject(new Error(`qemu exited with ${code}: ${errors.trim().split('\n').slice(-3).join(' | ')}`));
      else resolve(result);
    });
  });
}
