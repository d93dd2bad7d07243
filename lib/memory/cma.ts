/**
 * Single-copy transfers with another process's memory (Cross Memory Attach: process_vm_readv/writev), as
 * Open MPI's smsc/cma and UCX's cma transport move data between ranks on one node. Any memory of the peer,
 * nothing shared beforehand: the caller only needs ptrace permission over the peer, which Yama's
 * ptrace_scope decides (0: same user; 1: also the peer must name the caller with allowPeerAccess(), or be
 * its descendant; 2: CAP_SYS_PTRACE only; 3: never).
 */
import { readFileSync } from 'node:fs';

import { RdmaError } from '../core/errors';
import { toByteRange, type BufferSource } from '../core/buffers';
import { native } from '../native';

/** A range of a peer's address space; `addr` as a bigint or its decimal/hex text (as in a descriptor). */
export interface PeerRange {
  addr: bigint | string;
  length: number;
}

/** Yama's ptrace_scope, or undefined on a kernel without Yama (then only the user and capabilities count). */
export function ptraceScope(): 0 | 1 | 2 | 3 | undefined {
  try {
    return Number(readFileSync('/proc/sys/kernel/yama/ptrace_scope', 'utf8').trim()) as 0 | 1 | 2 | 3;
  } catch {
    return undefined;
  }
}

/**
 * Lets `pid` (default: any process of this user) read and write this process's memory under Yama scope 1,
 * as Open MPI's and UCX's CMA paths do with PR_SET_PTRACER. Nothing to do, and harmless, without Yama.
 */
export function allowPeerAccess(pid?: number): void {
  native.allowPtracer(pid ?? -1);
}

/** Copies from `pid`'s memory into `target`; returns the bytes copied (fewer: the remote ranges hit unmapped memory). */
export function readFrom(pid: number, remote: PeerRange | PeerRange[], target: BufferSource): number {
  return transfer('process_vm_readv', pid, remote, target);
}

/** Copies `source` into `pid`'s memory; returns the bytes copied. */
export function writeTo(pid: number, remote: PeerRange | PeerRange[], source: BufferSource): number {
  return transfer('process_vm_writev', pid, remote, source);
}

function transfer(verb: 'process_vm_readv' | 'process_vm_writev', pid: number, remote: PeerRange | PeerRange[], local: BufferSource): number {
  const ranges = (Array.isArray(remote) ? remote : [remote]).map((range) => {
    if (typeof range !== 'object' || range === null) throw new TypeError('a remote range is {addr, length}');
    return { addr: typeof range.addr === 'string' ? BigInt(range.addr) : range.addr, length: range.length };
  });
  const { arrayBuffer, offset, length } = toByteRange(local);
  try {
    return verb === 'process_vm_readv'
      ? native.processRead(pid, ranges, arrayBuffer, offset, length)
      : native.processWrite(pid, ranges, arrayBuffer, offset, length);
  } catch (error) {
    throw error instanceof RdmaError && error.code === 'EPERM' ? explainPermission(error, pid) : error;
  }
}

/** EPERM says little: say which rule refused it. */
function explainPermission(error: RdmaError, pid: number): RdmaError {
  const scope = ptraceScope();
  const why =
    scope === 3 ? 'Yama ptrace_scope 3 forbids cross-process access entirely'
    : scope === 2 ? 'Yama ptrace_scope 2 allows it only with CAP_SYS_PTRACE'
    : scope === 1 ? `Yama ptrace_scope 1: process ${pid} must call allowPeerAccess() for this process (or be its descendant)`
    : `process ${pid} belongs to another user (or is not dumpable)`;
  return new RdmaError(`${error.message}: ${why}`, error.code, error.errno, error.verb);
}

/** What a peer needs to read or write a published buffer: JSON-safe, so it can travel by any channel. */
export interface PeerMemoryDescriptor {
  pid: number;
  /** The buffer's address in the publishing process, as hex text. */
  addr: string;
  length: number;
}

/**
 * A buffer published for peers to reach with readFrom()/writeTo(). Its memory stays at its address for as
 * long as this object (which holds the buffer) is kept; under Yama scope 1 the reader (default: any process
 * of this user) is let in.
 */
export class PeerMemory {
  readonly bytes: Uint8Array;
  readonly descriptor: PeerMemoryDescriptor;

  /** @internal Use peerMemory(). */
  constructor(bytes: Uint8Array, descriptor: PeerMemoryDescriptor) {
    this.bytes = bytes;
    this.descriptor = descriptor;
  }
}

export function peerMemory(buffer: BufferSource, options: { reader?: number } = {}): PeerMemory {
  const { arrayBuffer, offset, length } = toByteRange(buffer);
  const descriptor = { pid: process.pid, addr: `0x${native.addressOf(arrayBuffer, offset).toString(16)}`, length };
  allowPeerAccess(options.reader);
  return new PeerMemory(new Uint8Array(arrayBuffer, offset, length), descriptor);
}
