/**
 * `npm run bench:segments`: the intra-node paths between two processes, 8 B to 64 MiB, from one run:
 * memcpy in one process (the ceiling), a store into an attached segment, CMA read and write, an RDMA write
 * over rxe between the two processes' endpoints, and a copy through a Unix socket; plus the cost of getting,
 * attaching and detaching a segment. From the figures it chooses the thresholds an MPI shared-memory
 * transport needs (as Open MPI's smsc/vader does: inline, copy-in/copy-out, single copy) and writes them,
 * with the table, into BENCHMARKS-segments.md. Runs in the Soft-RoCE VM when this host has no RDMA device.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { release } from 'node:os';
import { join } from 'node:path';

import { hostHasDevice, insideVm, rerunInVm } from '../harness/device-host';
import { byteLabel, timeLabel } from './units';
import { connect, getSegment, listen, makeSegment, peerMemory, readFrom, writeTo, type PeerMemoryDescriptor } from '..';

const KiB = 1024;
const MiB = 1024 * KiB;
const MAX = 64 * MiB;
const sizes = [8, 64, 512, 4 * KiB, 32 * KiB, 256 * KiB, 2 * MiB, 16 * MiB, 64 * MiB];
const budgetNs = 200e6; // per cell
const HOST = '10.0.2.15';
// The measuring process's pid names the socket (abstract namespace); the peer is told it.
const socketName = process.argv.includes('--peer') ? process.argv.at(-1)! : `rdma-node-bench-segments-${process.pid}`;
const socketPath = `\0${socketName}`;

/** What the peer process publishes for the measuring one. */
interface Published {
  segid: string;
  memory: PeerMemoryDescriptor;
  port: number;
  region: { addr: string; rkey: number };
}

/** Runs `once()` repeatedly for about the budget; ns per run. */
async function timed(once: () => unknown | Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await once();
  const first = Number(process.hrtime.bigint() - start);
  const runs = Math.max(3, Math.min(10_000, Math.floor(budgetNs / Math.max(first, 1))));
  const t = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) await once();
  return Number(process.hrtime.bigint() - t) / runs;
}

// --- the peer: owns a segment and a private buffer, serves an endpoint and a Unix socket

/** What the peer must keep alive while it runs (the private buffer would otherwise be collected). */
const kept: unknown[] = [];

async function peerMain(): Promise<void> {
  const segment = makeSegment(MAX);
  segment.attach().bytes.fill(1);
  const memory = peerMemory(Buffer.alloc(MAX, 2));
  const listener = await listen(HOST, 0);
  // The socket path: receive `size` bytes, answer one byte.
  const server = createServer((socket: Socket) => {
    let expected = 0;
    let got = 0;
    socket.on('data', (chunk: Buffer) => {
      if (expected === 0) {
        expected = chunk.readUInt32LE(0);
        chunk = chunk.subarray(4);
      }
      got += chunk.length;
      if (got >= expected) {
        expected = got = 0;
        socket.write('k');
      }
    });
  });
  server.listen(socketPath);
  const accepted = listener.accept();
  process.send!({ segid: segment.id, memory: memory.descriptor, port: listener.address!.port });
  const endpoint = await accepted;
  const target = endpoint.registerMemory(Buffer.alloc(MAX));
  const remote = target.remote();
  process.send!({ region: { addr: remote.addr.toString(), rkey: remote.rkey } });
  kept.push(segment, memory, listener, endpoint, target);
  process.on('message', () => process.exit(0)); // told to stop
}

// --- the measuring process

interface Row {
  size: number;
  ns: Record<string, number>;
}

const paths = ['memcpy', 'segment store', 'CMA read', 'CMA write', 'RDMA write', 'Unix socket'] as const;

async function measure(peer: ChildProcess, published: Published): Promise<{ rows: Row[]; attach: Record<string, number> }> {
  const source = Buffer.alloc(MAX, 3);
  const local = Buffer.alloc(MAX);
  const view = getSegment(published.segid, { access: 'rdwr' }).attach();
  const regionMessage = once(peer, 'message'); // sent once the endpoint is accepted
  const endpoint = await connect(HOST, published.port);
  const [message] = (await regionMessage) as [Pick<Published, 'region'>];
  const remote = { addr: BigInt(message.region.addr), rkey: message.region.rkey };
  const sourceMr = endpoint.registerMemory(source);
  const socket = createConnection(socketPath);
  await once(socket, 'connect');
  const header = Buffer.alloc(4);
  const roundTrip = (size: number): Promise<void> => {
    header.writeUInt32LE(size, 0);
    socket.write(header);
    socket.write(source.subarray(0, size));
    return once(socket, 'data').then(() => undefined);
  };
  const cells = (size: number): Record<(typeof paths)[number], () => unknown> => ({
    memcpy: () => source.copy(local, 0, 0, size),
    'segment store': () => view.bytes.set(source.subarray(0, size)),
    'CMA read': () => readFrom(published.memory.pid, { addr: published.memory.addr, length: size }, local.subarray(0, size)),
    'CMA write': () => writeTo(published.memory.pid, { addr: published.memory.addr, length: size }, source.subarray(0, size)),
    'RDMA write': () => endpoint.write({ mr: sourceMr, length: size }, { addr: remote.addr, rkey: remote.rkey }),
    'Unix socket': () => roundTrip(size),
  });
  // Every path compiled and warm before the first row is measured.
  for (const run of Object.values(cells(8))) for (let i = 0; i < 200; i++) await run();
  const rows: Row[] = [];
  for (const size of sizes) {
    const ns: Record<string, number> = {};
    for (const [path, run] of Object.entries(cells(size))) ns[path] = await timed(run);
    rows.push({ size, ns });
    console.error(`  ${byteLabel(size)} done`);
  }
  const attach: Record<string, number> = {};
  for (const size of [4 * KiB, MAX]) {
    attach[`get + attach + detach + release, ${byteLabel(size)}`] = await timed(() => {
      const access = getSegment(published.segid);
      access.attach(0, size).close();
      access.close();
    });
  }
  socket.destroy();
  await endpoint.close();
  return { rows, attach };
}

const rate = (bytes: number, ns: number): string => `${((bytes / ns) * 1e3).toFixed(bytes / ns >= 1 ? 0 : 1)} MB/s`;

/**
 * The thresholds, chosen from the figures as vader chooses its own: copy-in/copy-out through shared memory
 * (two stores: the sender's into a shared fragment, the receiver's out of it) until a single CMA copy is
 * cheaper, and inline sends while a store costs about what the smallest one does (its fixed cost dominates).
 */
function thresholds(rows: Row[]): { inline: number; singleCopy: number | undefined } {
  const floor = Math.min(...rows.filter((r) => r.size <= 512).map((r) => r.ns['segment store']!));
  const inline = rows.filter((r) => r.size <= 4 * KiB && r.ns['segment store']! <= 2 * floor).at(-1)!.size;
  const cheaper = rows.findIndex((_, i) => rows.slice(i).every((s) => s.ns['CMA read']! < 2 * s.ns['segment store']!));
  return { inline, singleCopy: cheaper < 0 ? undefined : rows[cheaper]!.size };
}

function report(rows: Row[], attach: Record<string, number>): string {
  const { inline, singleCopy } = thresholds(rows);
  const lines = [
    '# Intra-node paths between two processes',
    '',
    `From one run of \`npm run bench:segments\` (${new Date().toISOString().slice(0, 10)}, Linux ${release()}, ${insideVm() ? 'the Soft-RoCE VM under TCG: absolute times are emulated, compare within a row' : 'this host'}).`,
    'Each cell: time per transfer, and bandwidth. memcpy is within one process, the ceiling; the segment store',
    'is one copy into a segment the peer owns; CMA copies from or to the peer\'s private memory',
    '(`process_vm_readv/writev`); the RDMA write goes over rxe between the two processes\' endpoints (a',
    'promise per write); the Unix socket path sends the bytes and waits for a one-byte answer.',
    '',
    `| size | ${paths.join(' | ')} |`,
    `| ---: | ${paths.map(() => '---:').join(' | ')} |`,
    ...rows.map((r) => `| ${byteLabel(r.size)} | ${paths.map((p) => `${timeLabel(r.ns[p]!)}, ${rate(r.size, r.ns[p]!)}`).join(' | ')} |`),
    '',
    '| segment operation | time |',
    '| --- | ---: |',
    ...Object.entries(attach).map(([name, ns]) => `| ${name} | ${timeLabel(ns)} |`),
    '',
    '## Thresholds chosen from these figures',
    '',
    `- **Inline** (data in the message header, as vader's \`max_inline_send\`): up to ${byteLabel(inline)}, where a store`,
    '  still costs no more than twice the cheapest small one: the fixed cost of a message dominates there.',
    ...(singleCopy === undefined
      ? ['- **Single copy** (CMA): never cheaper than copy-in/copy-out (two stores) through a segment at any size',
        '  measured here, so copy-in/copy-out through a segment throughout (vader\'s eager and fragment path).']
      : [`- **Single copy** (CMA, as vader's \`single_copy_mechanism\`): from ${byteLabel(singleCopy)}, the first size from which one CMA read is`,
        '  cheaper than the two stores of copy-in/copy-out (sender into a shared fragment, receiver out of it) at every',
        '  larger size; below it, copy-in/copy-out through a segment (vader\'s eager and fragment path).']),
    '- RDMA loopback is slower than both at every size on rxe: between processes of one node it is not the path to use.',
    '- These hold for the machine measured; under TCG the kernel\'s copies (CMA) are emulated far slower than the',
    '  JIT\'s, so on real hardware run `npm run bench:segments` again before choosing.',
    '',
  ];
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  if (process.argv.includes('--peer')) {
    await peerMain();
    return -1; // runs until told to stop
  }
  if (!insideVm() && !hostHasDevice()) {
    console.log('This host has no RDMA device: running the benchmark on Soft-RoCE inside the VM.');
    return rerunInVm(__filename, process.argv.slice(2), 30 * 60_000);
  }
  const peer = fork(__filename, ['--peer', socketName], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [published] = (await once(peer, 'message')) as [Published];
  const { rows, attach } = await measure(peer, published);
  peer.send('stop');
  await once(peer, 'exit');
  const text = report(rows, attach);
  const file = join(__dirname, '..', '..', '..', 'BENCHMARKS-segments.md');
  writeFileSync(file, text);
  console.log(text);
  console.log(`written to ${file}`);
  return 0;
}

main().then(
  (status) => {
    if (status >= 0) process.exit(status);
  },
  (error: Error) => {
    console.error(`bench:segments: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
