/**
 * Runs a command inside a throwaway qemu VM whose Debian kernel has rdma_rxe: the host's filesystem
 * shared read-only, the working directory read-write, and an rxe device (rxe0) already created.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { ensureInitramfs } from './initramfs';
import { jobScript } from './job';
import { ensureKernel, type Kernel, type Suite } from './kernel';
import { stderrLog, type Log } from './paths';
import { bootQemu } from './qemu';
import { requireTools } from './tools';

export { cachedKernels, ensureKernel, type Kernel, type Suite } from './kernel';

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
}

const baseEnv = { HOME: '/root', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'dumb', LANG: 'C.UTF-8' };

/** Thrown when a kernel could not run the command at all: worth trying the next kernel. */
class BootFailure extends Error {}

async function runWith(kernel: Kernel, command: string[], options: VmOptions, log: Log): Promise<number> {
  let initramfs: string;
  try {
    initramfs = await ensureInitramfs(kernel, log);
  } catch (error) {
    throw new BootFailure(`cannot build the initramfs for Linux ${kernel.version}: ${(error as Error).message}`);
  }
  const cwd = resolve(options.cwd ?? process.cwd());
  // The job directory is the guest's third share: the script to run in, the exit status out.
  const jobDir = mkdtempSync(join(tmpdir(), 'rdma-node-vm-'));
  try {
    writeFileSync(join(jobDir, 'run.sh'), jobScript({ command, cwd, env: { ...baseEnv, ...options.env } }));
    if (cwd !== '/') writeFileSync(join(jobDir, 'project'), cwd);
    log(`booting Linux ${kernel.version} (qemu, software emulation: expect it to be slow)`);
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? 30 * 60_000;
    const result = await bootQemu({
      vmlinuz: kernel.vmlinuz,
      initramfs,
      jobDir,
      projectDir: cwd === '/' ? undefined : cwd,
      memoryMiB: options.memoryMiB ?? 3072,
      cpus: options.cpus ?? 2,
      timeoutMs,
      nonce: `rdma-node-vm-${randomBytes(6).toString('hex')}`,
      output: options.output ?? ((line) => process.stdout.write(`${line}\n`)),
      log,
    });
    if (result.timedOut) throw new Error(`the VM run exceeded ${Math.round(timeoutMs / 1000)} s and was stopped`);
    if (!result.ready) {
      const why = result.failure ?? `the guest stopped; its last console lines: ${result.tail.join(' | ') || '(none)'}`;
      throw new BootFailure(`Linux ${kernel.version} did not get as far as running the command: ${why}`);
    }
    // The status file survives a console that garbled the marker; the marker covers a failed write.
    const statusFile = join(jobDir, 'status');
    const status = existsSync(statusFile) ? Number(readFileSync(statusFile, 'utf8').trim()) : result.status;
    if (status === undefined || !Number.isInteger(status)) {
      throw new Error(`the command started in the VM but no exit status came back (${result.failure ?? 'did the guest crash?'})`);
    }
    log(`VM finished in ${((Date.now() - started) / 1000).toFixed(1)} s, command exit status ${status}`);
    return status;
  } finally {
    rmSync(jobDir, { recursive: true, force: true });
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
    try {
      return await runWith(kernel, command, options, log);
    } catch (error) {
      if (!(error instanceof BootFailure)) throw error;
      failed(suite, error);
    }
  }
  throw new Error(`the VM could not run the command (${failures.join('; ')})`);
}
