/** `rdma-node bench <test> [host] [perftest flags]`. */
import { listDevices } from '../verbs/device';
import { benchUsage, parseBenchArgs, resolveOptions } from './options';
import { runBench } from './run';

export async function benchMain(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs(argv);
  if (parsed.given.help) {
    console.log(benchUsage);
    return 0;
  }
  const { options, warnings } = resolveOptions(parsed);
  for (const warning of warnings) console.error(`warning: ${warning}`);
  if (listDevices().length === 0) {
    throw new Error(`this host has no RDMA device; on Soft-RoCE run it inside the VM: rdma-node vm -- rdma-node bench ${argv.join(' ')}`);
  }
  await runBench(options);
  return 0;
}
