/**
 * Runs a command inside a throwaway qemu VM whose Debian kernel has rdma_rxe: the host's filesystem
 * shared read-only, the working directory read-write, and an rxe device (rxe0) already created.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ensureInitramfs } from './initramfs';
import { jobScript } from './job';
import { ensureKernel, type Kernel, type Suite } from './kernel';
import { stderrLog, type Log } from './paths';
import { bootQemu } from './qemu';

export { ensureKernel, type Kernel, type Suite } from './kernel';

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
  log?: Log;
  /** The guest console (the command's stdout and stderr); default: this process's stdout. */
  output?: (line: string) => void;
}

const baseEnv = { HOME: '/root', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'dumb', LANG: 'C.UTF-8' };

async function runWith(kernel: Kernel, command: string[], options: VmOptions, log: Log): Promise<{ ready: boolean; status?: number }> {
  const initramfs = await ensureInitramfs(kernel, log);
  const cwd = options.cwd ?? process.cwd();
  const jobDir = mkdtempSync(join(tmpdir(), 'rdma-node-vm-'));
  try {
    writeFileSync(join(jobDir, 'run.sh'), jobScript({ command, cwd, env: { ...baseEnv, ...options.env } }));
    if (cwd !== '/') writeFileSync(join(jobDir, 'project'), cwd);
    log(`booting Linux ${kernel.version} with rdma_rxe (qemu, software emulation: expect it to be slow)`);
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
      output: options.output ?? ((line) => process.stdout.write(`${line}\n`)),
      log,
    });
    if (result.timedOut) throw new Error(`the VM run exceeded ${Math.round(timeoutMs / 1000)} s and was stopped`);
    const statusFile = join(jobDir, 'status');
    const status = existsSync(statusFile) ? Number(readFileSync(statusFile, 'utf8').trim()) : result.status;
    log(`VM finished in ${((Date.now() - started) / 1000).toFixed(1)} s${status === undefined ? '' : `, command exit status ${status}`}`);
    return { ready: result.ready, status };
  } finally {
    rmSync(jobDir, { recursive: true, force: true });
  }
}

/**
 * Resolves with the command's exit status. Rejects when the VM could not be prepared or booted, or the
 * command never reported a status: callers must treat that as failure, not as "no device".
 */
export async function runInVm(command: string[], options: VmOptions = {}): Promise<number> {
  const log = options.log ?? stderrLog;
  const choice = options.kernel ?? 'auto';
  const suites: Suite[] = choice === 'auto' ? ['sid', 'bookworm'] : [choice];
  let lastError: Error | undefined;
  for (const suite of suites) {
    try {
      const kernel = await ensureKernel(suite, log);
      const { ready, status } = await runWith(kernel, command, options, log);
      if (status !== undefined) return status;
      // Booted and ran, but no status: the command was cut short (e.g. the guest crashed). No retry.
      if (ready) throw new Error('the command started in the VM but no exit status came back');
      lastError = new Error(`Linux ${kernel.version} did not get as far as running the command`);
    } catch (error) {
      lastError = error as Error;
      if (/no exit status came back|exceeded/.test(lastError.message)) throw lastError;
    }
    if (suite !== suites[suites.length - 1]) log(`${lastError.message}; falling back to the next kernel`);
  }
  throw lastError ?? new Error('no kernel to boot');
}
