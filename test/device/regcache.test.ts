import assert from 'node:assert/strict';
import { test } from 'node:test';

import { allocate, monitorStatus, type MappedBuffer } from '../../lib';
import { differingBytes, rdmaWrite } from './memory';
import { pair, random, remoteAccess } from './fixture';

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
