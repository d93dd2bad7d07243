/**
 * A peer process for the segment tests (argv: a mode and its arguments; one result line on stdout).
 *   own <size> <mode> <seed> [channel]   make a segment, fill it, print its id; then on stdin: `exit`
 *   read <segid> <offset> <length> <seed>   attach read-only, check the pattern: "ok" or "bad <count>"
 *   write <segid> <offset> <length> <seed>  attach read-write, write the pattern: "written"
 *   write-rdonly <segid>           attach read-only and write to it (the kernel stops it: SIGSEGV)
 *   get <segid> <rdwr|rdonly>      {"ok":true} or {"code":...}
 *   descriptors <segid>            get it 'rdonly', then 'rdwr': how each holds the memfd ("rdonly rdwr")
 *   watch <segid>                  attach, print "attached", then on 'removed': "removed <reason> <byte 0>"
 *   rdma <segid> <length> <seed>   attach read-write, register it, RDMA-write the pattern into it from a
 *                                  loopback QP and RDMA-read it back: "rdma <write status> <read status> <bad>"
 *   rdma-stream <segid> <count>    the same, `count` writes of 64 KiB one after another, printing "ready"
 *                                  first: "rdma-stream <successes> <failures> <bad bytes at the end>"
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';

import { Access, WrOpcode, createLoopbackPair, getSegment, makeSegment, openDevice, type RdmaError, type Segment, type SegmentChannel } from '../../lib';

/** Runs a peer to its end: its last output line, status and signal. */
export async function runPeer(args: string[], uid?: number): Promise<{ line: string; status: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [__filename, ...args], { uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [status, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { line: stdout.trim().split('\n').at(-1) ?? '', status, signal, stderr };
}

/** What an 'own' peer exports, alive until it exits. */
const owned: Segment[] = [];

const longRunning = new Set<ChildProcess>();

/**
 * SIGKILLs the long-running peers still there: each test file runs it after every test, so that a test
 * that failed before ending its peers does not keep the file's process, and the whole run, waiting on them.
 */
export function killPeers(): void {
  for (const child of longRunning) child.kill('SIGKILL');
}

/** A long-running peer: resolves once it printed its first line. */
export async function startPeer(args: string[], uid?: number): Promise<{ first: string; next(): Promise<string>; child: ReturnType<typeof spawn> }> {
  const child = spawn(process.execPath, [__filename, ...args], { uid, gid: uid, stdio: ['pipe', 'pipe', 'inherit'] });
  longRunning.add(child);
  child.on('exit', () => longRunning.delete(child));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = (await lines.next()).value as string;
  return { first, child, next: async () => ((await lines.next()).value as string) ?? '' };
}

/** This process's descriptors for the package's memfds (`name`: segments, buffers, or both). */
export function memfds(name = 'rdma-node'): string[] {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(`/memfd:${name}`);
    } catch {
      return false; // the directory's own descriptor, gone
    }
  });
}

/** How this process holds segment memfds: the access mode of each ('rdonly' or 'rdwr'). */
function memfdModes(): string[] {
  return memfds()
    .map((fd) => {
      const flags = parseInt(/flags:\s*([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
      return (flags & 3) === 0 ? 'rdonly' : 'rdwr';
    });
}

export const patternByte = (seed: number, i: number): number => (i * 13 + seed * 101 + (i >> 9)) & 0xff;

/** Writes the seed's pattern, as if `bytes` started at byte `base` of the segment. */
export function fill(bytes: Uint8Array, seed: number, base = 0): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = patternByte(seed, base + i);
}

/** How many bytes differ from the seed's pattern. */
export function mismatches(bytes: Uint8Array, seed: number, base = 0): number {
  let bad = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== patternByte(seed, base + i)) bad++;
  return bad;
}

async function main([mode, ...args]: string[]): Promise<void> {
  switch (mode) {
    case 'own': {
      const segment = makeSegment(Number(args[0]), { permit: { mode: Number(args[1]) }, channel: (args[3] ?? 'socket') as SegmentChannel });
      fill(segment.attach().bytes, Number(args[2]));
      console.log(segment.id);
      // Held until the process ends: a segment that is garbage-collected is removed (seen under the
      // sanitizers, whose allocator makes V8 collect sooner: peers were refused with ENOENT).
      owned.push(segment);
      createInterface({ input: process.stdin }).on('line', (line) => line === 'exit' && process.exit(0));
      return;
    }
    case 'read': {
      const [segid, offset, length, seed] = [args[0]!, Number(args[1]), Number(args[2]), Number(args[3])];
      const view = getSegment(segid).attach(offset, length);
      const bad = mismatches(view.bytes, seed, offset);
      console.log(bad === 0 ? 'ok' : `bad ${bad}`);
      return;
    }
    case 'write': {
      const [segid, offset, length, seed] = [args[0]!, Number(args[1]), Number(args[2]), Number(args[3])];
      fill(getSegment(segid, { access: 'rdwr' }).attach(offset, length).bytes, seed, offset);
      console.log('written');
      return;
    }
    case 'write-rdonly': {
      const view = getSegment(args[0]!).attach(0, 4096);
      console.log('attached');
      view.bytes[0] = 0xee;
      console.log('wrote');
      return;
    }
    case 'get': {
      try {
        getSegment(args[0]!, { access: args[1] as 'rdwr' | 'rdonly' });
        console.log(JSON.stringify({ ok: true }));
      } catch (error) {
        console.log(JSON.stringify({ code: (error as RdmaError).code }));
      }
      return;
    }
    case 'descriptors': {
      const modes = (['rdonly', 'rdwr'] as const).map((access) => {
        const got = getSegment(args[0]!, { access });
        const modes = memfdModes().join(',');
        got.close();
        return modes;
      });
      console.log(modes.join(' '));
      return;
    }
    case 'watch': {
      const access = getSegment(args[0]!);
      const view = access.attach(0, 4096);
      access.on('removed', (reason: string) => {
        console.log(`removed ${reason} ${view.bytes[0]}`);
        process.exit(0);
      });
      console.log('attached');
      setInterval(() => undefined, 1000); // keep running: the watch itself keeps no process alive
      return;
    }
    case 'rdma': {
      const [segid, length, seed] = [args[0]!, Number(args[1]), Number(args[2])];
      const view = getSegment(segid, { access: 'rdwr' }).attach(0, length);
      using context = openDevice();
      const loop = createLoopbackPair(context);
      const target = loop.pd.registerMemory(view.bytes, Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ);
      const source = loop.pd.registerMemory(Buffer.alloc(length));
      fill(source.bytes, seed);
      loop.qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
      const [written] = await loop.cqs[0].take(1, { timeoutMs: 30_000 });
      const back = loop.pd.registerMemory(Buffer.alloc(length), Access.LOCAL_WRITE);
      loop.qps[0].postSend({ wrId: 2, opcode: WrOpcode.RDMA_READ, sgList: [{ mr: back }], remote: target.remote() });
      const [read] = await loop.cqs[0].take(1, { timeoutMs: 30_000 });
      console.log(`rdma ${written!.statusName} ${read!.statusName} ${mismatches(back.bytes, seed)}`);
      return;
    }
    case 'rdma-stream': {
      const [segid, count] = [args[0]!, Number(args[1])];
      const length = 65_536;
      const view = getSegment(segid, { access: 'rdwr' }).attach(0, length);
      using context = openDevice();
      const loop = createLoopbackPair(context);
      const target = loop.pd.registerMemory(view.bytes, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
      const source = loop.pd.registerMemory(Buffer.alloc(length));
      console.log('ready');
      let successes = 0;
      for (let i = 0; i < count; i++) {
        fill(source.bytes, i);
        loop.qps[0].postSend({ wrId: i, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
        const [done] = await loop.cqs[0].take(1, { timeoutMs: 30_000 });
        if (done!.statusName === 'SUCCESS') successes++;
      }
      console.log(`rdma-stream ${successes} ${count - successes} ${mismatches(view.bytes, count - 1)}`);
      return;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

if (require.main === module) void main(process.argv.slice(2));
