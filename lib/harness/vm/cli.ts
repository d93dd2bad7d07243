/** `rdma-node vm`: run a command inside the Soft-RoCE VM. */
import { cachedKernels, ensureKernel, runInVm, type VmOptions } from './';
import { interruptible } from './interrupt';
import { stderrLog } from './paths';

const usage = `usage: rdma-node vm [--kernel auto|sid|bookworm] [--timeout SECONDS] [--memory MiB] [--cpus N] [--hosts 1|2] [--] COMMAND [ARG...]
       rdma-node vm --fetch [--kernel auto|sid|bookworm]

Runs COMMAND inside a throwaway qemu VM whose kernel has rdma_rxe, with rxe0 created on its eth0
(10.0.2.15), the host's / shared read-only and the current directory read-write; exits with COMMAND's
status. The kernel is Debian sid's (rxe with ODP), or bookworm's 6.1 when sid's cannot be fetched or
booted. --fetch only downloads the current kernel into the cache and lists what is cached.

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

export function parseVmArgs(argv: string[]): VmArgs {
  const args: VmArgs = { options: {}, command: [], fetch: false, help: false };
  const number = (flag: string, value: string | undefined, integer = false): number => {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new Error(`${flag} needs a positive ${integer ? 'integer' : 'number'}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.command = argv.slice(i + 1);
      break;
    }
    if (!arg.startsWith('-')) {
      args.command = argv.slice(i);
      break;
    }
    const value = argv[i + 1];
    switch (arg) {
      case '--kernel':
        if (value !== 'auto' && value !== 'sid' && value !== 'bookworm') throw new Error('--kernel is auto, sid or bookworm');
        args.options.kernel = value;
        i++;
        break;
      case '--timeout':
        args.options.timeoutMs = number(arg, value) * 1000;
        i++;
        break;
      case '--memory':
        args.options.memoryMiB = number(arg, value, true);
        i++;
        break;
      case '--cpus':
        args.options.cpus = number(arg, value, true);
        i++;
        break;
      case '--hosts':
        if (value !== '1' && value !== '2') throw new Error('--hosts is 1 or 2');
        args.options.hosts = Number(value) as 1 | 2;
        i++;
        break;
      case '--fetch':
        args.fetch = true;
        break;
      case '-h': case '--help':
        args.help = true;
        break;
      default:
        throw new Error(`unknown option ${arg}`);
    }
  }
  return args;
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
