/**
 * Runs a command inside a throwaway qemu VM whose Debian kernel has rdma_rxe: the host's filesystem
 * shared read-only, the working directory read-write, and an rxe device (rxe0) already created; or in
 * two such VMs linked to each other (hosts: 2).
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { ensureInitramfs } from './initramfs';
import { jobScript } from './job';
import { ensureKernel, type Kernel, type Suite } from './kernel';
import { ensureChroot, ensurePatchedRxe } from './rxe-module';
import { stderrLog, type Log } from './paths';
import { BootFailure, combine, guestFor, PEER_GRACE_MS, statusOf, type Guest } from './guest';
import { freeUdpPorts, pairHosts, pairSecrets, peerKillRequested } from './pair';
import { bootQemu } from './qemu';
import { requireTools } from './tools';

export { cachedKernels, ensureKernel, type Kernel, type Suite } from './kernel';
export { hostRole, killPeerVm, type HostRole } from './pair';

export interface VmOptions {
  /** 'auto' (default): sid's kernel (rxe with ODP), bookworm's when sid cannot be fetched or booted. */
  kernel?: 'auto' | Suite;
  /** Working directory of the command, shared read-write (default: process.cwd()). */
  cwd?: string;
  /** Environment of the command, on top of HOME, PATH, TERM and LANG. */
  env?: Record<string, string>;
  memoryMiB?: number;
  cpus?: number;
  /** Whole run, boot included (default 30 minutes). */
  timeoutMs?: number;
  /** Progress of preparing and booting the VM; default: stderr, prefixed `[vm] `. */
  log?: Log;
  /** The guest console (the command's stdout and stderr); default: this process's stdout. */
  output?: (line: string) => void;
  /**
   * 2: run the command in two VMs at once, linked by a private network with an rxe device on it in each
   * (see pair.ts for the environment that tells each its role); the run fails if either fails.
   */
  hosts?: 1 | 2;
  /** Stops the VMs (and rejects) when aborted. */
  signal?: AbortSignal;
  /**
   * 'stock' (default): the kernel's own rdma_rxe. 'patched': rdma_rxe built from the kernel's source with
   * kernel/patches (sid's kernel only; built once, rxe-module.ts). The command sees RDMA_NODE_RXE, and
   * with 'patched' RDMA_NODE_SUITE_ROOT: a chroot of sid with sid's rdma-core.
   */
  rxe?: 'stock' | 'patched';
}

const baseEnv = { HOME: '/root', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'dumb', LANG: 'C.UTF-8' };

async function runWith(kernel: Kernel, command: string[], options: VmOptions, log: Log): Promise<number> {
  let initramfs: string;
  try {
    initramfs = await ensureInitramfs(kernel, log);
  } catch (error) {
    throw new BootFailure(`cannot build the initramfs for Linux ${kernel.version}: ${(error as Error).message}`);
  }
  const cwd = resolve(options.cwd ?? process.cwd());
  const hosts = options.hosts === 2 ? pairHosts(await freeUdpPorts(), pairSecrets()) : undefined;
  const output = options.output ?? ((line: string) => process.stdout.write(`${line}\n`));
  const guests = (hosts ?? [undefined]).map((host) => guestFor(host, log, output));
  const stop = new AbortController();
  const interrupt = (): void => stop.abort();
  options.signal?.addEventListener('abort', interrupt);
  if (options.signal?.aborted) stop.abort();
  let grace: NodeJS.Timeout | undefined;
  // A guest of a pair may ask for the other's qemu to be SIGKILLed (killPeerVm): a peer host that vanishes.
  const kills = guests.map(() => new AbortController());
  stop.signal.addEventListener('abort', () => kills.forEach((kill) => kill.abort()));
  const killWatch = hosts && setInterval(() => guests.forEach((guest, i) => {
    const victim = guests[1 - i]!;
    if (!peerKillRequested(guest.jobDir) || kills[1 - i]!.signal.aborted) return;
    victim.log(`qemu SIGKILLed at ${guest.label}'s request`);
    kills[1 - i]!.abort();
  }), 200);
  try {
    for (const guest of guests) {
      writeFileSync(join(guest.jobDir, 'run.sh'), jobScript({ command, cwd, env: { ...baseEnv, RDMA_NODE_RXE: options.rxe ?? 'stock', ...(kernel.suiteRoot ? { RDMA_NODE_SUITE_ROOT: kernel.suiteRoot } : {}), ...options.env, ...guest.host?.env } }));
      if (cwd !== '/') writeFileSync(join(guest.jobDir, 'project'), cwd);
    }
    const what = hosts
      ? `two VMs with Linux ${kernel.version}, linked through UDP ports ${hosts.map((h) => h.link.localPort).join(' and ')} (${hosts.map((h) => `host${h.index} ${h.env.RDMA_NODE_ADDRESS}`).join(', ')}, ${hosts[0].link.device} on each)`
      : `Linux ${kernel.version}`;
    log(`booting ${what} (qemu, software emulation: expect it to be slow)`);
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? 30 * 60_000;
    const failed = (guest: Guest): void => {
      if (!hosts || grace || stop.signal.aborted) return;
      guest.log(`failed; stopping the other VM in ${PEER_GRACE_MS / 1000} s unless it ends first`);
      grace = setTimeout(() => stop.abort(), PEER_GRACE_MS);
    };
    const boot = (guest: Guest, i: number): Promise<number> =>
      bootQemu({
        vmlinuz: kernel.vmlinuz,
        initramfs,
        jobDir: guest.jobDir,
        projectDir: cwd === '/' ? undefined : cwd,
        memoryMiB: options.memoryMiB ?? (hosts ? 2048 : 3072),
        // Two vCPUs each would be four busy threads on a two-core host: round trips took 5x longer.
        cpus: options.cpus ?? (hosts ? 1 : 2),
        timeoutMs,
        signal: kills[i]!.signal,
        link: guest.host?.link,
        nonce: `rdma-node-vm-${randomBytes(6).toString('hex')}`,
        output: guest.output,
        log: guest.log,
      })
        // Killed as asked, its side of the test is done: the asking side's assertions decide the run.
        .then((result) => (kills[i]!.signal.aborted && !stop.signal.aborted ? 0 : statusOf(guest, kernel, result, timeoutMs, started, options.signal)))
        .then((status) => {
          if (status !== 0) failed(guest);
          return status;
        }, (error: unknown) => {
          failed(guest);
          throw error;
        });
    const status = combine(await Promise.allSettled(guests.map((guest, i) => boot(guest, i))));
    if (hosts) log(`both VMs finished in ${((Date.now() - started) / 1000).toFixed(1)} s, status ${status}`);
    return status;
  } finally {
    clearTimeout(grace);
    clearInterval(killWatch || undefined);
    stop.abort();
    options.signal?.removeEventListener('abort', interrupt);
    for (const guest of guests) rmSync(guest.jobDir, { recursive: true, force: true });
  }
}

/**
 * Resolves with the command's exit status. Rejects when the VM could not be prepared or booted, or the
 * command never reported a status: callers must treat that as failure, not as "no device".
 */
export async function runInVm(command: string[], options: VmOptions = {}): Promise<number> {
  if (command.length === 0) throw new Error('no command to run in the VM');
  requireTools(['qemu-system-x86_64', 'setpriv']);
  const log = options.log ?? stderrLog;
  const choice = options.kernel ?? 'auto';
  const suites: Suite[] = choice === 'auto' ? ['sid', 'bookworm'] : [choice];
  // Fetching or booting one kernel can fail for reasons the next does not share; a command that ran, a
  // timeout or a qemu that will not start are final.
  const failures: string[] = [];
  const failed = (suite: Suite, error: unknown): void => {
    failures.push(`${suite}: ${(error as Error).message}`);
    const next = suites[suites.indexOf(suite) + 1];
    if (next) log(`${(error as Error).message}; trying ${next}'s kernel`);
  };
  for (const suite of suites) {
    let kernel: Kernel;
    try {
      kernel = await ensureKernel(suite, log);
    } catch (error) {
      failed(suite, error);
      continue;
    }
    if (options.rxe === 'patched') {
      if (suite !== 'sid') {
        failed(suite, new Error(`the patched rdma_rxe is made for sid's kernel, not ${suite}'s`));
        continue;
      }
      kernel = { ...kernel, rxeModule: await ensurePatchedRxe(kernel, log), suiteRoot: await ensureChroot(kernel, log) };
    }
    // A panic while booting gets one more boot of the same kernel: sid's 7.2 kernel dies now and then in
    // early boot under multi-threaded TCG (an int3 oops on the second vCPU in sched_clock_cpu while the
    // first live-patches a static branch there: 1 boot in 50 measured), which a second boot does not repeat.
    for (let attempt = 1; ; attempt++) {
      try {
        return await runWith(kernel, command, options, log);
      } catch (error) {
        if (!(error instanceof BootFailure)) throw error;
        if (error.panicked && attempt === 1) {
          log(`${error.message}; booting it once more`);
          continue;
        }
        failed(suite, error);
        break;
      }
    }
  }
  throw new Error(`the VM could not run the command (${failures.join('; ')})`);
}
