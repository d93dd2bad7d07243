import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

import { Access, allocate, monitorStatus, type MappedBuffer } from '../../lib';
import { native } from '../../lib/native';
import { differingBytes, rdmaWrite } from '../support/memory';
import { pair, random, remoteAccess } from '../support/fixture';

const SIZE = 64 << 10;

// Memory changes a process can make behind every registration's back, each leaving the same address mapped
// with new physical pages.
const changes: Record<string, (buffer: MappedBuffer) => void> = {
  'mmap MAP_FIXED over it': (buffer) => buffer.remap(),
  'munmap, then mmap at the same address': (buffer) => {
    buffer.unmap();
    buffer.remap();
  },
  'madvise(MADV_DONTNEED)': (buffer) => buffer.discard(),
};

for (const [name, change] of Object.entries(changes)) {
  test(`after ${name}, a monitored cache registers the new memory and the RDMA write lands in it`, () => {
    using t = pair();
    const loop = t.pair;
    using cache = loop.pd.createRegistrationCache({ strategy: 'monitor' });
    const buffer = allocate(SIZE);
    const data = loop.pd.registerMemory(random(SIZE));
    const first = cache.register(buffer.bytes, remoteAccess);
    assert.equal(rdmaWrite(loop, data, first.remote()), 'SUCCESS');
    assert.equal(differingBytes(buffer.bytes, data.bytes), 0);
    first.close();

    change(buffer);
    data.bytes.set(random(SIZE));
    const second = cache.register(buffer.bytes, remoteAccess);
    assert.equal(second.addr, buffer.address);
    assert.deepEqual(cache.stats(), { ...cache.stats(), hits: 0, misses: 2, invalidations: 1 });
    assert.equal(rdmaWrite(loop, data, second.remote()), 'SUCCESS');
    assert.equal(differingBytes(buffer.bytes, data.bytes), 0, 'the write must land in the memory mapped now');
  });

  test(`after ${name}, a cache without the monitor hands out the stale registration and the write is lost`, () => {
    using t = pair();
    const loop = t.pair;
    using cache = loop.pd.createRegistrationCache({ strategy: 'unsafe-unmonitored' });
    const buffer = allocate(SIZE);
    const data = loop.pd.registerMemory(random(SIZE));
    cache.register(buffer.bytes, remoteAccess).close();
    change(buffer);
    const stale = cache.register(buffer.bytes, remoteAccess);
    assert.deepEqual(cache.stats(), { ...cache.stats(), hits: 1, misses: 1, invalidations: 0 });
    // The failure the monitor exists for: success, and the data went to the old pages.
    assert.equal(rdmaWrite(loop, data, stale.remote()), 'SUCCESS');
    assert.equal(differingBytes(buffer.bytes, Buffer.alloc(SIZE)), 0, 'the new pages never saw the write');
  });
}

test('a cached source registration sends the bytes mapped now, not the old ones', () => {
  using t = pair();
  const loop = t.pair;
  using cache = loop.pd.createRegistrationCache({ strategy: 'monitor' });
  const buffer = allocate(SIZE);
  const target = loop.pd.registerMemory(Buffer.alloc(SIZE), remoteAccess);
  buffer.bytes.fill(1);
  let source = cache.register(buffer.bytes);
  assert.equal(rdmaWrite(loop, source, target.remote()), 'SUCCESS');
  source.close();
  buffer.remap();
  buffer.bytes.fill(2);
  source = cache.register(buffer.bytes);
  assert.equal(rdmaWrite(loop, source, target.remote()), 'SUCCESS');
  assert.equal(differingBytes(target.bytes, Buffer.alloc(SIZE, 2)), 0);
});

test('moving memory with mremap invalidates its registration (REMAP event)', () => {
  using t = pair();
  const loop = t.pair;
  using cache = loop.pd.createRegistrationCache({ strategy: 'monitor' });
  const buffer = allocate(SIZE);
  const remaps = monitorStatus().remapEvents;
  cache.register(buffer.bytes, remoteAccess).close();
  buffer.move();
  assert.equal(monitorStatus().remapEvents, remaps + 1);
  const data = loop.pd.registerMemory(random(SIZE));
  const moved = cache.register(buffer.bytes, remoteAccess);
  assert.equal(rdmaWrite(loop, data, moved.remote()), 'SUCCESS');
  assert.equal(differingBytes(buffer.bytes, data.bytes), 0);
  assert.deepEqual(cache.stats(), { ...cache.stats(), entries: 1, invalidations: 1 });
});

test('a cached registration covering a range serves its parts, with the access it was made with', () => {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const buffer = allocate(SIZE);
  const whole = cache.register(buffer.bytes, remoteAccess);
  assert.equal(whole.cached, true);
  const part = cache.register(buffer.bytes, Access.LOCAL_WRITE, { offset: 4100, length: 300 });
  assert.equal(part.addr, buffer.address + 4100n);
  assert.equal(part.length, 300);
  assert.equal(part.rkey, whole.rkey);
  assert.deepEqual(part.remote(10, 20), { addr: buffer.address + 4110n, rkey: whole.rkey, length: 20 });
  assert.throws(() => part.remote(290, 20), RangeError);
  whole.close();
  part.close();
  // An entry with less access than asked for is no match: a second entry for the same range.
  const other = allocate(4096);
  cache.register(other.bytes, Access.LOCAL_WRITE).close();
  cache.register(other.bytes, Access.LOCAL_WRITE | Access.REMOTE_READ).close();
  cache.register(other.bytes, Access.LOCAL_WRITE).close();
  assert.deepEqual(cache.stats(), { hits: 2, misses: 3, invalidations: 0, evictions: 0, uncached: 0, entries: 3, bytes: SIZE + 8192, inUse: 0 });
});

test('least recently used entries are evicted at the count and byte limits, never those in use', () => {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor', maxEntries: 2, maxBytes: 3 * 4096 });
  const buffers = [0, 1, 2].map(() => allocate(4096));
  const [a, b, c] = buffers.map((buffer) => cache.register(buffer.bytes));
  assert.deepEqual([a!.cached, b!.cached, c!.cached], [true, true, false], 'a third entry does not fit while two are in use');
  a!.close();
  b!.close();
  c!.close();
  cache.register(buffers[0]!.bytes).close(); // a is now the most recently used
  cache.register(buffers[2]!.bytes).close(); // evicts b
  assert.deepEqual(cache.stats(), { hits: 1, misses: 4, invalidations: 0, evictions: 1, uncached: 1, entries: 2, bytes: 8192, inUse: 0 });
  cache.register(buffers[0]!.bytes).close();
  cache.register(buffers[2]!.bytes).close();
  assert.equal(cache.stats().hits, 3);
  // An 8 KiB entry: one entry must go for the count limit; the bytes (4 + 8 KiB) then fit.
  const big = allocate(8192);
  cache.register(big.bytes).close();
  assert.deepEqual(cache.stats(), { ...cache.stats(), entries: 2, bytes: 12288, evictions: 2 });
  const huge = allocate(4 * 4096);
  assert.equal(cache.register(huge.bytes).cached, false, 'larger than maxBytes: uncached');
  cache.flush();
  assert.deepEqual(cache.stats(), { ...cache.stats(), entries: 0, bytes: 0 });
});

test('freeing a mapped buffer closes its memory regions and drops its cache entries first', () => {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const buffer = allocate(SIZE);
  const view = buffer.bytes;
  const plain = t.pair.pd.registerMemory(buffer.bytes, remoteAccess);
  const cached = cache.register(buffer.bytes, remoteAccess);
  cache.register(buffer.bytes, remoteAccess, { offset: 4096, length: 4096 }).close();
  buffer.close();
  assert.equal(plain.closed, true);
  assert.equal(cached.closed, true);
  assert.deepEqual(cache.stats(), { ...cache.stats(), entries: 0, invalidations: 1, inUse: 0 });
  assert.equal(view.length, 0, 'views of freed memory are empty');
  assert.throws(() => buffer.bytes, TypeError);
  assert.equal(buffer.mapped, false);
});

test('closing the cache closes the regions it made; closing the PD closes the cache', () => {
  using t = pair();
  const cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const region = cache.register(Buffer.alloc(100));
  cache.close();
  assert.equal(region.closed, true);
  assert.throws(() => cache.register(Buffer.alloc(1)), TypeError);
  const second = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  t.pair.pd.close();
  assert.equal(second.closed, true);
});

test('Node Buffers from the heap are watched too, and a dead buffer invalidates its entry', async () => {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const data = t.pair.pd.registerMemory(random(4096));
  // In a function, so that nothing keeps the buffer (or the region's view of it) reachable afterwards.
  (() => {
    const target = Buffer.alloc(256 << 10);
    using region = cache.register(target, remoteAccess);
    assert.equal(region.cached, true);
    assert.equal(rdmaWrite(t.pair, data, region.remote(0, 4096)), 'SUCCESS');
    assert.equal(differingBytes(target.subarray(0, 4096), data.bytes), 0);
  })();
  for (let i = 0; i < 10 && cache.stats().entries > 0; i++) {
    global.gc!();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.deepEqual(cache.stats(), { ...cache.stats(), entries: 0, invalidations: 1 });
});

test("a small Buffer from Node's pool: the cache holds no reference, the pool is collected when Node lets it go", async () => {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  let collected = false;
  const registry = new FinalizationRegistry(() => (collected = true));
  (() => {
    // A pool of our own: a pool lives while any slice of it does, and other code holds slices of the
    // current one (which is also why a registered pool slice can seem to keep its pool alive).
    let first: Buffer;
    do first = Buffer.allocUnsafe(100);
    while (first.byteOffset !== 0);
    const small = Buffer.from('x'.repeat(100));
    assert.ok(small.buffer === first.buffer && small.buffer.byteLength === Buffer.poolSize, 'a slice of the pool');
    registry.register(small.buffer, 0);
    cache.register(small).close();
  })();
  // Node keeps its current pool for the next small Buffers: fill it so that Node starts another.
  for (let made = 0; made < 2 * Buffer.poolSize; made += 100) Buffer.allocUnsafe(100);
  for (let i = 0; i < 10 && !(collected && cache.stats().entries === 0); i++) {
    global.gc!();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(collected, 'the cached entry does not keep the pool alive');
  assert.deepEqual(cache.stats(), { ...cache.stats(), entries: 0, invalidations: 1 });
});

test("'uncached' registers every time; memory the monitor cannot vouch for is registered uncached", () => {
  using t = pair();
  using uncached = t.pair.pd.createRegistrationCache({ strategy: 'uncached' });
  const buffer = Buffer.alloc(4096);
  const [a, b] = [uncached.register(buffer), uncached.register(buffer)];
  assert.deepEqual([a.cached, b.cached], [false, false]);
  assert.notEqual(a.lkey, b.lkey);
  assert.deepEqual(uncached.stats(), { hits: 0, misses: 0, invalidations: 0, evictions: 0, uncached: 2, entries: 0, bytes: 0, inUse: 0 });
  using monitored = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  // A file mapping: userfaultfd refuses to watch it.
  assert.equal(monitored.register(native.testing.mapFile('/proc/self/exe'), 0).cached, false);
  // Shared memory (a memfd): userfaultfd would take it, but its fd can drop pages without an event.
  assert.equal(monitored.register(native.testing.mapShared(), remoteAccess).cached, false);
  assert.deepEqual(monitored.stats(), { ...monitored.stats(), misses: 2, uncached: 2, entries: 0 });
});

test('a fork()ed child trusts no cached registration and watches nothing; the parent is unaffected', () => {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const buffer = allocate(SIZE);
  const region = cache.register(buffer.bytes);
  assert.deepEqual(native.testing.forkProbe(region.handle), { parentValid: true, childValid: false, childCouldWatch: false, childCouldMonitor: false });
  region.close();
  cache.register(buffer.bytes).close();
  assert.equal(cache.stats().hits, 1);
});

test('when the monitor may have lost track of events, every entry is invalidated', async () => {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const buffers = [allocate(4096), allocate(4096)];
  for (const buffer of buffers) cache.register(buffer.bytes).close();
  const lost = monitorStatus().lostTrack;
  native.testing.simulateLostTrack();
  while (monitorStatus().lostTrack === lost) await new Promise((resolve) => setTimeout(resolve, 5));
  for (const buffer of buffers) cache.register(buffer.bytes).close();
  assert.deepEqual(cache.stats(), { ...cache.stats(), hits: 0, misses: 4, invalidations: 2, entries: 2 });
});

test('the monitor is shared by the caches of worker threads and outlives any of them', async () => {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const buffer = allocate(SIZE);
  cache.register(buffer.bytes).close();
  const unmaps = monitorStatus().unmapEvents;
  const worker = new Worker(join(__dirname, 'regcache-worker.js'));
  const [result] = (await once(worker, 'message')) as [{ landed: boolean; strategy: string }];
  assert.deepEqual(result, { landed: true, strategy: 'monitor' });
  await once(worker, 'exit');
  assert.ok(monitorStatus().unmapEvents > unmaps);
  assert.equal(monitorStatus().running, true);
  buffer.remap();
  const data = t.pair.pd.registerMemory(random(SIZE));
  const region = cache.register(buffer.bytes, remoteAccess);
  assert.equal(region.cached, true);
  assert.equal(cache.stats().invalidations, 1);
  assert.equal(rdmaWrite(t.pair, data, region.remote()), 'SUCCESS');
  assert.equal(differingBytes(buffer.bytes, data.bytes), 0);
});

test('hugetlbfs pages: watched at their 2 MiB alignment, faults in them filled, remaps caught', () => {
  writeFileSync('/proc/sys/vm/nr_hugepages', '8');
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const buffer = allocate(4 << 20, { hugePages: 'hugetlb' });
  assert.equal(buffer.pageSize, 2 << 20);
  const data = t.pair.pd.registerMemory(random(64 << 10));
  let region = cache.register(buffer.bytes, remoteAccess, { offset: 12345, length: 64 << 10 });
  assert.equal(region.cached, true);
  region.close();
  const faults = monitorStatus().faults;
  buffer.discard(0, 2 << 20); // the first huge page, under the watch, is missing again: touching it faults
  buffer.bytes[5] = 9;
  assert.equal(buffer.bytes[5], 9);
  assert.ok(monitorStatus().faults > faults);
  buffer.remap();
  region = cache.register(buffer.bytes, remoteAccess, { offset: 12345, length: 64 << 10 });
  assert.equal(cache.stats().invalidations, 1);
  assert.equal(rdmaWrite(t.pair, data, region.remote()), 'SUCCESS');
  assert.equal(differingBytes(buffer.bytes.subarray(12345, 12345 + (64 << 10)), data.bytes), 0);
});
