/**
 * Segments: memory shared between processes with XPMEM's operations and permission model, without a
 * kernel module (native/memory/segment.h). The owner makes a segment and passes its id to peers by any
 * channel; a peer gets it (checked against the permit, as XPMEM checks mode bits against the caller's
 * user and group) and attaches ranges of it as MappedBuffers. XPMEM's names map as: xpmem_make →
 * makeSegment, xpmem_remove → segment.remove(), xpmem_get → getSegment, xpmem_release → access.close(),
 * xpmem_attach → attach(), xpmem_detach → the attachment's close().
 *
 * Removal stops new gets and tells every peer ('removed' on its access); the memory lives on in the
 * mappings that exist until the last goes. An owner that exits or is killed is the same for its peers
 * ('removed' with 'owner-exited'): their mappings keep the data, new gets are refused (ESRCH).
 *
 * The id names the channel the memory travels on (native/memory/segment_channel.h): 'socket' (default),
 * the owner's segment server, which checks the permit against the caller's credentials, for any user the
 * permit lets in; or 'pidfd', where the peer takes the owner's memfd with pidfd_getfd, which the kernel
 * allows only to a process that may ptrace the owner (its user, or root; under Yama ptrace_scope 1 the
 * owner must also name the peer with allowPeerAccess(pid)), with the permit then checked by the peer.
 * Either way a peer that got 'rdonly' holds a read-only descriptor: it cannot map the memory writable.
 */
import { native, type NativeSegment, type NativeSegmentAccess } from '../native';
import { NativeEmitter, NativeObject, kNative } from '../native/wrapper';
import { MappedBuffer } from './mapped';

export type SegmentChannel = 'socket' | 'pidfd';
const channelCode = { socket: 0, pidfd: 1 } as const;

export interface SegmentPermit {
  /** Permission bits for the owner's user, its group and others, as a file's (default 0o600: the owner's user only). */
  mode?: number;
}

/** The owner's side of a segment. close() removes it and closes the owner's file. */
export class Segment extends NativeObject<NativeSegment> {
  /** @internal Use makeSegment(). */
  constructor(handle: NativeSegment) {
    super(handle);
  }

  /** What a peer passes to getSegment(): printable, valid while this process runs and the segment is not removed. */
  get id(): string {
    return this.handle.id;
  }

  get size(): number {
    return this.handle.size;
  }

  /** Maps a range of the segment here (offset page-aligned), writable. */
  attach(offset = 0, length = this.size - offset): MappedBuffer {
    return new MappedBuffer(this.handle.attach(offset, length));
  }

  /** No new gets; peers that have it are told. Existing mappings stay until they are closed. */
  remove(): void {
    this.handle.remove();
  }
}

export type SegmentRemoval = 'removed' | 'owner-exited';

/**
 * A peer's access to a segment. Events: 'removed' (reason: 'removed' or 'owner-exited') once, when the
 * owner removes the segment or goes away. Watching for it keeps no process alive. close() releases it.
 */
export class SegmentAccess extends NativeEmitter<NativeSegmentAccess> {
  readonly segid: string;

  /** @internal Use getSegment(). */
  constructor(handle: NativeSegmentAccess, segid: string) {
    super(handle);
    this.segid = segid;
  }

  get size(): number {
    return this.handle.size;
  }

  /** Got with access 'rdwr' (attachments writable) rather than 'rdonly'. */
  get writable(): boolean {
    return this.handle.writable;
  }

  /**
   * Maps a range of the segment here (offset page-aligned). A read-only attachment is a PROT_READ
   * mapping: a write to it from JS faults (the writing process gets SIGSEGV), it never reaches the memory.
   */
  attach(offset = 0, length = this.size - offset): MappedBuffer {
    return new MappedBuffer(this.handle.attach(offset, length));
  }
}

export interface SegmentOptions {
  permit?: SegmentPermit;
  /** 2 MiB pages from hugetlbfs (needs vm.nr_hugepages; attach offsets are then multiples of 2 MiB). */
  hugePages?: 'hugetlb';
  /** How peers get it: 'socket' (default) or 'pidfd'. */
  channel?: SegmentChannel;
}

/**
 * A segment exported under its id with `permit`: `size` bytes of new memory (rounded up to whole pages),
 * or the pages of a buffer from allocate(size, { shareable: true }) (whole, with its page size; the
 * segment outlives the buffer's close() as a mapping does).
 */
export function makeSegment(source: number | MappedBuffer, options: SegmentOptions = {}): Segment {
  const mode = options.permit?.mode ?? 0o600;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new RangeError('permit.mode is a permission mode from 0 to 0o777');
  if (options.hugePages !== undefined && options.hugePages !== 'hugetlb') throw new TypeError("hugePages is 'hugetlb' or absent");
  const channel = channelCode[options.channel ?? 'socket'];
  if (channel === undefined) throw new TypeError("channel is 'socket' or 'pidfd'");
  if (source instanceof MappedBuffer) {
    if (options.hugePages !== undefined) throw new TypeError("a buffer's segment has the buffer's pages: hugePages is for a size");
    return new Segment(native.makeSegment(source[kNative], mode, false, channel));
  }
  return new Segment(native.makeSegment(source, mode, options.hugePages === 'hugetlb', channel));
}

/**
 * Another process's segment by its id: 'rdonly' (default) or 'rdwr', as its permit allows. Refusals are
 * RdmaErrors: EACCES (the permit; on the pidfd channel also the kernel's ptrace check), ENOENT (removed,
 * or stale), ESRCH (its owner is not running, or the id is from another host), EINVAL (not an id).
 */
export function getSegment(segid: string, options: { access?: 'rdwr' | 'rdonly' } = {}): SegmentAccess {
  const access = options.access ?? 'rdonly';
  if (access !== 'rdwr' && access !== 'rdonly') throw new TypeError("access is 'rdwr' or 'rdonly'");
  let wrapper: SegmentAccess | undefined;
  const handle = native.getSegment(segid, access === 'rdwr', (reason) => wrapper?.emit('removed', reason));
  wrapper = new SegmentAccess(handle, segid);
  return wrapper;
}
