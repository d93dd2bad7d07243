import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Access, RdmaError, allocate, odpMissing, type LoopbackPair, type MappedBuffer, type MemoryRegion } from '../../lib';
import { differingBytes, rdmaWrite, rdmaWrites } from '../support/memory';
import { open, pair, random, remoteAccess } from '../support/fixture';

// Every test asks the device first (queryDevice's ODP capabilities, as the library does) and checks what
// must happen either way: rxe has ODP on sid's kernel, none on bookworm's (`--kernel bookworm`).
const SIZE = 64 << 10;
const PAGE = 4096;
// rxe's ODP copy in Linux 7.2 puts every packet at the start of its page (see the last test), so the
// writes that check ODP here are single packets at page starts: one per page, of this many bytes.
const PIECE = 1000;

function odpMissingHere(): string | undefined {
  using context = open();
  return odpMissing(context.queryDevice().odpCaps, 'rc', remoteAccess);
}

const isEopnotsupp = (verb: string) => (error: unknown) =>
  error instanceof RdmaError && error.code === 'EOPNOTSUPP' && error.errno === 95 && error.verb === verb;

/** Writes fresh random bytes at the start of every page of `target` (over `buffer`); returns how many did not land. */
function writePageStarts(loop: LoopbackPair, data: MemoryRegion, target: MemoryRegion, buffer: MappedBuffer): number {
  data.bytes.set(random(SIZE));
  const pages = Array.from({ length: SIZE / PAGE }, (_, page) => page * PAGE);
  const statuses = rdmaWrites(loop, pages.map((at) => ({ source: data, offset: at, length: PIECE, target: target.remote(at, PIECE) })));
  assert.deepEqual(new Set(statuses), new Set(['SUCCESS']));
  return pages.reduce((lost, at) => lost + differingBytes(buffer.bytes.subarray(at, at + PIECE), data.bytes.subarray(at, at + PIECE)), 0);
}

test('an ODP registration follows the memory mapped at its addresses; without ODP it is a clear EOPNOTSUPP', () => {
  using t = pair();
  const loop = t.pair;
  const buffer = allocate(SIZE);
  const register = () => loop.pd.registerMemory(buffer.bytes, remoteAccess | Access.ON_DEMAND);
  if (odpMissingHere() !== undefined) {
    assert.throws(register, isEopnotsupp('ibv_reg_mr'));
    return;
  }
  const odp = register();
  const data = loop.pd.registerMemory(Buffer.alloc(SIZE));
  assert.equal(writePageStarts(loop, data, odp, buffer), 0);
  for (const change of [() => buffer.remap(), () => buffer.discard(), () => (buffer.unmap(), buffer.remap())]) {
    change();
    assert.equal(writePageStarts(loop, data, odp, buffer), 0, 'the writes reach the pages mapped now');
  }
});

test("a cache with 'odp' reuses registrations across remapping with no invalidation; 'auto' prefers the monitor", () => {
  using t = pair();
  const loop = t.pair;
  using auto = loop.pd.createRegistrationCache();
  assert.equal(auto.strategy, 'monitor');
  if (odpMissingHere() !== undefined) {
    assert.throws(() => loop.pd.createRegistrationCache({ strategy: 'odp' }), isEopnotsupp('ibv_reg_mr'));
    return;
  }
  using cache = loop.pd.createRegistrationCache({ strategy: 'odp' });
  assert.equal(cache.strategy, 'odp');
  const buffer = allocate(SIZE);
  const data = loop.pd.registerMemory(Buffer.alloc(SIZE));
  cache.register(buffer.bytes, remoteAccess).close();
  buffer.remap();
  const region = cache.register(buffer.bytes, remoteAccess);
  assert.deepEqual(cache.stats(), { ...cache.stats(), hits: 1, misses: 1, invalidations: 0 });
  assert.equal(writePageStarts(loop, data, region, buffer), 0, 'the reused ODP registration reaches the new memory');
  region.close();
  // Freeing still drops the registration: it would keep an rkey to the address range alive for nothing.
  buffer.close();
  assert.deepEqual(cache.stats(), { ...cache.stats(), entries: 0, invalidations: 1 });
});

test('advise (prefetch) is EOPNOTSUPP where the provider has no advise_mr, and works where it has', () => {
  using t = pair();
  const loop = t.pair;
  const buffer = allocate(SIZE);
  const odp = odpMissingHere() === undefined;
  const region = loop.pd.registerMemory(buffer.bytes, remoteAccess | (odp ? Access.ON_DEMAND : 0));
  assert.throws(() => region.advise('prefetch', { offset: SIZE, length: 1 }), RangeError);
  assert.throws(() => region.advise('fetch' as never), TypeError);
  try {
    region.advise('prefetch-write', { flush: true });
  } catch (error) {
    assert.ok(isEopnotsupp('ibv_advise_mr')(error), String(error));
    return;
  }
  const data = loop.pd.registerMemory(Buffer.alloc(SIZE));
  assert.equal(writePageStarts(loop, data, region, buffer), 0);
});

test('rxe ODP data placement on this kernel, measured (why auto prefers the monitor)', (t) => {
  if (odpMissingHere() !== undefined) return;
  using p = pair();
  const loop = p.pair;
  // A page-aligned buffer: wherever the packets land, they stay inside its pages.
  const buffer = allocate(2 * PAGE);
  const odp = loop.pd.registerMemory(buffer.bytes, remoteAccess | Access.ON_DEMAND);
  const data = loop.pd.registerMemory(random(PAGE));
  assert.equal(rdmaWrite(loop, data, odp.remote(0, PAGE)), 'SUCCESS');
  const misplaced = differingBytes(buffer.bytes.subarray(0, PAGE), data.bytes);
  t.diagnostic(`a ${PAGE}-byte write (4 packets at MTU 1024) into an ODP region: ${misplaced} of ${PAGE} bytes not where they belong`);
  using cache = loop.pd.createRegistrationCache();
  assert.equal(cache.strategy, 'monitor');
});
