#!/usr/bin/env node
/** The rdma-node command line. */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { benchMain } from '../bench/cli';
import { hostHasDevice, insideVm, rerunInVm } from '../harness/device-host';
import { collectDevInfo, devInfoJson, devinfoMain } from '../tools/devinfo';
import { listDevices } from '../verbs/device';
import { printDevices, runDemo } from './demo';
import { jobsMain, killMain, runMain } from './jobs';
import { runTests } from '../harness/test-runner';
import { rxeMain } from './rxe';
import { rcPingpong } from '../tools/rc-pingpong';
import { rping } from '../tools/rping';
import { srqPingpong } from '../tools/srq-pingpong';
import { udPingpong } from '../tools/ud-pingpong';
import { xsrqPingpong } from '../tools/xsrq-pingpong';
import { main as vmMain } from '../harness/vm/cli';

const usage = `usage: rdma-node <command>

  devices [--json]      list RDMA devices with their ports and GIDs
  devinfo [-v] [--json] what ibv_devinfo prints: device and port attributes, caps, GIDs
  bench <test> [host] [options]
                        perftest's eight tests (send/write/read/atomic x lat/bw) with its flags and
                        output; server without host, client with it (rdma-node bench --help)
  demo [--device NAME]  ping-pong, write/read integrity and bandwidth on a device
                        (inside the Soft-RoCE VM when this host has no RDMA device)
  test [unit|device|twohost|all] [--filter TEXT]
                        run the test suites (device tests in the VM when needed, two-host tests in
                        two linked VMs)
  setup                 install the Debian packages rdma-node needs (rdma-core headers and providers,
                        the reference tools, the VM's packages) with apt; only those missing
  run -np N [options] script.js [args]
                        run N ranks of a script on this host in one job container, accounted
                        (rdma-node run --help); across hosts use mpirun or srun
  jobs [--json]         the running jobs of this user and their processes
  kill [-s SIGNAL] JOB  end a job (or send SIGNAL to every process of it)
  rxe add NETDEV [--name NAME] | del NAME | list [--json]
                        Soft-RoCE devices, as rdma link add/delete/show do (rdma-node rxe --help)
  vm [options] -- CMD   run CMD inside a throwaway qemu VM with a Soft-RoCE device (rdma-node vm --help);
                        --hosts 2 runs it in two VMs linked to each other

  rc_pingpong | ud_pingpong | srq_pingpong [options] [server]
                        rdma-core's ibv_*_pingpong, same flags and wire protocol (interoperate with them)
  xsrq_pingpong [options] [server]
                        rdma-core's ibv_xsrq_pingpong (XRC: needs hardware), same flags and wire protocol
  rping -s|-c [options] librdmacm's rping, same flags and wire protocol
`;

async function demo(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { device: { type: 'string' } } });
  if (insideVm() || hostHasDevice()) {
    await runDemo(values.device ?? process.env.RDMA_NODE_DEVICE);
    return 0;
  }
  console.log('This host has no RDMA device: running the demo on Soft-RoCE inside a throwaway VM.\n');
  return rerunInVm(__filename, ['demo', ...argv], 20 * 60_000);
}

/** System packages are installed only when asked: by this command and the repository's npm start/test. */
function setup(): number {
  const script = resolve(__dirname, '..', '..', '..', 'scripts', 'setup.sh');
  return spawnSync('bash', [script], { stdio: 'inherit' }).status ?? 1;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'devices':
      if (parseArgs({ args: rest, options: { json: { type: 'boolean' } } }).values.json) console.log(JSON.stringify(listDevices().map((d) => devInfoJson(collectDevInfo(d))), null, 2));
      else printDevices();
      return 0;
    case 'devinfo':
      return devinfoMain(rest);
    case 'bench':
      return benchMain(rest);
    case 'demo':
      return demo(rest);
    case 'test':
      return runTests(rest);
    case 'setup':
      return setup();
    case 'vm':
      return vmMain(rest);
    case 'rxe':
      return rxeMain(rest);
    case 'run':
      return runMain(rest);
    case 'jobs':
      return jobsMain(rest);
    case 'kill':
      return killMain(rest);
    case 'rc_pingpong':
      return rcPingpong(rest);
    case 'ud_pingpong':
      return udPingpong(rest);
    case 'srq_pingpong':
      return srqPingpong(rest);
    case 'xsrq_pingpong':
      return xsrqPingpong(rest);
    case 'rping':
      return rping(rest);
    case undefined: case '-h': case '--help': case 'help':
      console.log(usage);
      return command === undefined ? 1 : 0;
    default:
      console.error(`unknown command: ${command}\n\n${usage}`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (status) => (process.exitCode = status),
  (error: Error) => {
    console.error(`rdma-node: ${error.message}`);
    process.exitCode = 1;
  },
);
