/** `rdma-node vm`: run a command inside the Soft-RoCE VM. */
import { cachedKernels, ensureKernel, runInVm, type VmOptions } from './';
import { interruptible } from './interrupt';
import { stderrLog } from './paths';
import { parseOptions, type OptionSpec } from '../../core/argv';

const usage = `usage: rdma-node vm [--kernel auto|sid|bookworm] [--rxe stock|patched] [--timeout SECONDS] [--memory MiB] [--cpus N] [--hosts 1|2] [--] COMMAND [ARG...]
       rdma-node vm --fetch [--kernel auto|sid|bookworm]

Runs COMMAND inside a throwaway qemu VM whose kernel has rdma_rxe, with rxe0 created on its eth0
(10.0.2.15), the host's / shared read-only and the current directory read-write; exits with COMMAND's
status. The kernel is Debian sid's (rxe with ODP), or bookworm's 6.1 when sid's cannot be fetched or
booted. --fetch only downloads the current kernel into the cache and lists what is cached.

--rxe patched loads rdma_rxe built from sid's kernel source with the fixes in kernel/patches (built once
in a debootstrap chroot of sid and cached; needs root) instead of the kernel's own (--rxe stock, the
default). The command sees RDMA_NODE_RXE=stock or patched.

--hosts 2 runs COMMAND in two such VMs at once, joined by a private link (a socket between the two qemu
processes) with an rxe device, rxe1, on it in each: host0 is 10.77.0.1, host1 10.77.0.2. Each command
sees RDMA_NODE_HOST_INDEX (0 or 1), RDMA_NODE_ADDRESS, RDMA_NODE_PEER (the other's address) and
RDMA_NODE_DEVICE (rxe1); output lines are prefixed [host0] and [host1]. Exits with the first nonzero
status; if either fails, the other is stopped 15 s later.`;

export interface VmArgs {
  options: VmOptions;
  command: string[];
  fetch: boolean;
  help: boolean;
}

const vmOptions: OptionSpec[] = [
  { long: 'kernel', value: true }, { long: 'timeout', value: true }, { long: 'memory', value: true }, { long: 'cpus', value: true },
  { long: 'hosts', value: true }, { long: 'rxe', value: true }, { long: 'fetch' }, { short: 'h', long: 'help' },
];

/** Options end at the command (getopt's "+" mode): `rdma-node vm node -e ...` passes -e to node. */
export function parseVmArgs(argv: string[]): VmArgs {
  const { values, positionals } = parseOptions(argv, vmOptions, { stopAtOperand: true });
  const last = (name: string): string | undefined => values.get(name)?.at(-1);
  const number = (name: string, integer = false): number | undefined => {
    const value = last(name);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name} needs a positive ${integer ? 'integer' : 'number'}`);
    return n;
  };
  const options: VmOptions = {};
  const kernel = last('kernel');
  if (kernel !== undefined) {
    if (kernel !== 'auto' && kernel !== 'sid' && kernel !== 'bookworm') throw new Error('--kernel is auto, sid or bookworm');
    options.kernel = kernel;
  }
  const rxe = last('rxe');
  if (rxe !== undefined) {
    if (rxe !== 'stock' && rxe !== 'patched') throw new Error('--rxe is stock or patched');
    options.rxe = rxe;
  }
  const timeout = number('timeout');
  if (timeout !== undefined) options.timeoutMs = timeout * 1000;
  const memory = number('memory', true);
  if (memory !== undefined) options.memoryMiB = memory;
  const cpus = number('cpus', true);
  if (cpus !== undefined) options.cpus = cpus;
  const hosts = last('hosts');
  if (hosts !== undefined) {
    if (hosts !== '1' && hosts !== '2') throw new Error('--hosts is 1 or 2');
    options.hosts = Number(hosts) as 1 | 2;
  }
  return { options, command: positionals, fetch: values.has('fetch'), help: values.has('h') };
}

/** Downloads the kernel `runInVm` would boot (auto: sid, or bookworm if sid's cannot be fetched). */
async function fetchKernel(choice: 'auto' | 'sid' | 'bookworm'): Promise<void> {
  if (choice !== 'auto') {
    await ensureKernel(choice, stderrLog, { refresh: true });
    return;
  }
  try {
    await ensureKernel('sid', stderrLog, { refresh: true });
  } catch (error) {
    stderrLog(`${(error as Error).message}; fetching bookworm's kernel instead`);
    await ensureKernel('bookworm', stderrLog, { refresh: true });
  }
}

/** `argv` is what follows `vm` on the command line; resolves with the exit status for the process. */
export async function main(argv: string[]): Promise<number> {
  const args = parseVmArgs(argv);
  if (args.help) {
    console.log(usage);
    return 0;
  }
  if (args.fetch) {
    await fetchKernel(args.options.kernel ?? 'auto');
    for (const kernel of cachedKernels()) console.log(`${kernel.suite}\t${kernel.version}\t${kernel.dir}`);
    return 0;
  }
  if (args.command.length === 0) {
    console.error(usage);
    return 1;
  }
  return interruptible((signal) => runInVm(args.command, { ...args.options, signal }));
}
