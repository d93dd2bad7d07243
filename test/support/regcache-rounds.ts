/**
 * Random rounds over a registration cache: allocate, register, free, unmap, remap (here and on another
 * thread), discard, move, GC and RDMA writes into and out of cached registrations, every byte checked.
 * regcache-random.test.ts runs them on the 'monitor' strategy, odp.test.ts on 'odp'.
 */
import { Access, allocate, type LoopbackPair, type MappedBuffer, type MemoryRegion, type RegistrationCacheStats, type RegistrationStrategy } from '../../lib';
import { native } from '../../lib/native';
import { remoteAccess } from './fixture';
import { differingBytes, rdmaWrites, waitForFreshPage, type Write } from './memory';

const PAGE = 4096;
const MAX_PAGES = 16;
const SLOTS = 6;

export interface RoundsResult {
  seed: number;
  writes: number;
  /** RDMA writes that did not complete successfully. */
  failed: number;
  /** Bytes that were not where a write put them. */
  lost: number;
  stats: RegistrationCacheStats;
  /** One line per kind of round: how many, and the time each took. */
  summary: string[];
}

// xorshift32: reproducible rounds; RDMA_NODE_SEED replays a failing run.
function generator(seed: number): (bound: number) => number {
  let state = seed >>> 0 || 1;
  return (bound) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % bound;
  };
}

export function randomRounds(loop: LoopbackPair, strategy: RegistrationStrategy, rounds: number): RoundsResult {
  const seed = Number(process.env.RDMA_NODE_SEED ?? 20261124);
  const random = generator(seed);
  using cache = loop.pd.createRegistrationCache({ strategy, maxEntries: 64 });
  const slots: (MappedBuffer | undefined)[] = new Array(SLOTS).fill(undefined);
  // Per slot: the bytes written into its buffer, and where its buffer's bytes are written to.
  const scratch = loop.pd.registerMemory(Buffer.alloc(SLOTS * MAX_PAGES * PAGE));
  const sink = loop.pd.registerMemory(Buffer.alloc(SLOTS * MAX_PAGES * PAGE), remoteAccess);
  const done: Record<string, number> = {};
  const spent: Record<string, number> = {};
  const result = { seed, writes: 0, failed: 0, lost: 0 };

  // Mostly whole buffers and whole pages, so that ranges repeat and the cache hits; sometimes any bytes.
  const pickRange = (buffer: MappedBuffer): { offset: number; length: number } => {
    const shape = random(4);
    if (shape === 0) return { offset: 0, length: buffer.length };
    if (shape === 3) {
      const length = 1 + random(buffer.length);
      return { offset: random(buffer.length - length + 1), length };
    }
    const pages = buffer.length / PAGE;
    const first = random(pages);
    return { offset: first * PAGE, length: (1 + random(pages - first)) * PAGE };
  };

  // One RDMA write per mapped buffer, into it or out of it, through registrations from the cache, posted
  // as one list; then every byte is checked.
  const writeAll = (round: number): void => {
    const value = (round % 251) + 1; // never 0: fresh pages read as zeros
    const checks: (() => number)[] = [];
    const list: Write[] = [];
    const regions: MemoryRegion[] = [];
    slots.forEach((buffer, slot) => {
      if (buffer === undefined || !buffer.mapped) return;
      const { offset, length } = pickRange(buffer);
      const base = slot * MAX_PAGES * PAGE;
      const bytes = buffer.bytes.subarray(offset, offset + length);
      if (random(2) === 0) {
        const source = scratch.bytes.subarray(base, base + length).fill(value);
        const region = cache.register(buffer.bytes, remoteAccess, { offset, length });
        regions.push(region);
        list.push({ source: scratch, target: region.remote(), length, offset: base });
        checks.push(() => differingBytes(bytes, source));
      } else {
        bytes.fill(value);
        const region = cache.register(buffer.bytes, Access.LOCAL_WRITE, { offset, length });
        regions.push(region);
        list.push({ source: region, target: sink.remote(base, length) });
        checks.push(() => differingBytes(sink.bytes.subarray(base, base + length), bytes));
      }
    });
    if (list.length === 0) return;
    result.failed += rdmaWrites(loop, list).filter((status) => status !== 'SUCCESS').length;
    for (const check of checks) result.lost += check();
    for (const region of regions) region.close();
    result.writes += list.length;
  };

  // A Node Buffer registered, dropped and collected (V8 frees it on a background thread), and a new one
  // registered and written at once: often at the same address, racing the monitor.
  const collectAndReuse = (round: number): void => {
    const size = 256 << 10;
    const sample = MAX_PAGES * PAGE;
    (() => cache.register(Buffer.alloc(size), remoteAccess).close())();
    global.gc!();
    const fresh = Buffer.alloc(size);
    const region = cache.register(fresh, remoteAccess);
    const source = scratch.bytes.subarray(0, sample).fill((round % 251) + 1);
    result.failed += rdmaWrites(loop, [{ source: scratch, target: region.remote(size - sample, sample) }]).filter((status) => status !== 'SUCCESS').length;
    result.lost += differingBytes(fresh.subarray(size - sample), source);
    region.close();
    result.writes++;
  };

  const started = Date.now();
  for (let round = 0; round < rounds; round++) {
    const roundStarted = process.hrtime.bigint();
    const slot = random(SLOTS);
    const buffer = slots[slot];
    let op: string;
    if (buffer === undefined) {
      op = 'allocate';
      slots[slot] = allocate((1 + random(MAX_PAGES)) * PAGE);
    } else if (!buffer.mapped) {
      op = 'remap';
      buffer.remap();
    } else {
      const dice = random(100);
      if (dice < 20) {
        op = 'write';
        writeAll(round);
      } else if (dice < 40) {
        op = 'register';
        const { offset, length } = pickRange(buffer);
        cache.register(buffer.bytes, remoteAccess, { offset, length }).close();
      } else if (dice < 52) {
        op = 'remap';
        buffer.remap();
      } else if (dice < 62) {
        op = 'unmap';
        buffer.unmap();
      } else if (dice < 74) {
        op = 'discard';
        const pages = Math.ceil(buffer.length / PAGE);
        const first = random(pages);
        buffer.discard(first * PAGE, (1 + random(pages - first)) * PAGE);
      } else if (dice < 82) {
        op = 'move';
        buffer.move();
      } else if (dice < 86) {
        // Fresh pages from another thread, seen here before that thread's UNMAP event reached the monitor.
        op = 'remap on a thread, then write';
        const bytes = buffer.bytes;
        bytes[0] = 1;
        native.testing.remapOnThread(buffer.address, buffer.length);
        waitForFreshPage(bytes);
        writeAll(round);
      } else if (dice < 88) {
        op = 'collect a Buffer, reuse at once';
        collectAndReuse(round);
      } else {
        op = 'free';
        buffer.close();
        slots[slot] = undefined;
      }
    }
    done[op] = (done[op] ?? 0) + 1;
    spent[op] = (spent[op] ?? 0) + Number(process.hrtime.bigint() - roundStarted) / 1e6;
  }
  const stats = cache.stats();
  for (const buffer of slots) buffer?.close();
  const summary = [
    `seed ${seed}, '${strategy}': ${rounds} rounds in ${Date.now() - started} ms, ${result.writes} RDMA writes checked`,
    ...Object.keys(done).map((op) => `  ${op}: ${done[op]} rounds, ${(spent[op]! / done[op]!).toFixed(2)} ms each`),
    `cache: ${JSON.stringify(stats)}`,
  ];
  return { ...result, stats, summary };
}
