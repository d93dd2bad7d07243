/** `rdma-node rxe`: Soft-RoCE devices added, deleted and listed as iproute2's `rdma link` does. */
import { flag, parseOptions, stringOption } from '../core/argv';
import { RdmaError } from '../core/errors';
import { addRxe, deleteRxe, listRdmaLinks, type RdmaLink } from '../verbs/rxe';

export const rxeUsage = `usage: rdma-node rxe add NETDEV [--name NAME] | del NAME | list [--json]

  add NETDEV [--name NAME]  add a Soft-RoCE device on the network device NETDEV (rdma link add NAME type
                            rxe netdev NETDEV); NAME is the first free rxeN unless given
  del NAME                  delete it (rdma link delete NAME)
  list [--json]             every RDMA port and the netdev it is bound to (rdma link show)

  add and del need CAP_NET_ADMIN; all need a kernel with RDMA (rdma_rxe for add).
`;

/** A line of `rdma link show`. */
export function formatLink(link: RdmaLink): string {
  const netdev = link.netdev === undefined ? '' : ` netdev ${link.netdev}`;
  return `link ${link.name}/${link.port} state ${link.stateName} physical_state ${link.physicalStateName}${netdev}`;
}

function run(command: string | undefined, argv: string[]): number {
  switch (command) {
    case 'add': {
      const parsed = parseOptions(argv, [{ long: 'name', value: true }]);
      if (parsed.positionals.length !== 1) break;
      const name = addRxe(parsed.positionals[0]!, { name: stringOption(parsed, 'name') });
      for (const link of listRdmaLinks().filter((l) => l.name === name)) console.log(formatLink(link));
      return 0;
    }
    case 'del': case 'delete': {
      const parsed = parseOptions(argv, []);
      if (parsed.positionals.length !== 1) break;
      deleteRxe(parsed.positionals[0]!);
      return 0;
    }
    case 'list': case 'show': {
      const parsed = parseOptions(argv, [{ long: 'json' }]);
      if (parsed.positionals.length !== 0) break;
      if (flag(parsed, 'json')) console.log(JSON.stringify(listRdmaLinks(), null, 2));
      else for (const link of listRdmaLinks()) console.log(formatLink(link));
      return 0;
    }
  }
  console.error(rxeUsage);
  return 1;
}

export function rxeMain(argv: string[]): number {
  const [command, ...rest] = argv;
  if (command === '-h' || command === '--help') {
    console.log(rxeUsage);
    return 0;
  }
  try {
    return run(command, rest);
  } catch (error) {
    // The failure a host without RDMA meets first: say what it means, on one line.
    if (error instanceof RdmaError && error.code === 'EPROTONOSUPPORT') {
      throw new Error(`rxe: this kernel has no RDMA (${error.verb}: EPROTONOSUPPORT from socket(AF_NETLINK, NETLINK_RDMA)); Soft-RoCE needs a kernel with ib_core and rdma_rxe, as the VM of 'rdma-node vm' has`);
    }
    throw error;
  }
}
