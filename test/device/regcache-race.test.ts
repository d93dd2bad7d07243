/**
 * The registration cache against memory unmapped on one thread and mapped again at the same address on
 * another: the kernel lets the new mapping exist before the monitor has even been handed the UNMAP event,
 * and no lookup may hit the old registration in that window (see UffdMonitor::CaughtUp).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { allocate } from '../../lib';
import { native } from '../../lib/native';
import { pair, remoteAccess } from '../support/fixture';
import { differingBytes, rdmaWrite, waitForFreshPage } from '../support/memory';
import { start } from '../support/processes';
import type { RaceCounts } from './regcache-race-child';

const child = join(__dirname, 'regcache-race-child.js');

async function race(mode: 'gc' | 'worker', size: number, trials: number): Promise<RaceCounts> {
  // Every buffer of 32 KiB or more is a mapping of its own: freeing it is a munmap, and the next one of the
  // same size usually lands at the same address.
  const env: NodeJS.ProcessEnv = { ...process.env, MALLOC_MMAP_THRESHOLD_: String(32 << 10) };
  // ASan's allocator (npm run test:sanitize) holds freed memory back and has no mmap threshold: no address
  // would be reused. The child runs on the plain addon then; this race is not one a sanitizer can watch.
  if (env.LD_PRELOAD?.includes('libasan')) for (const name of ['LD_PRELOAD', 'RDMA_NODE_ADDON']) delete env[name];
  const { status, output } = await start([process.execPath, '--expose-gc', child, mode, String(size), String(trials)], 10 * 60_000, env).done;
  // The counts are the child's last line; anything before it (a stack) says why it failed.
  if (status !== 0) throw new Error(`the race child exited with ${status}: ${output}`);
  return JSON.parse(output.trim().split('\n').pop()!) as RaceCounts;
}

const cases: [mode: 'gc' | 'worker', size: number, trials: number][] = [
  ['gc', 64 << 10, 300],
  ['gc', 4 << 20, 200],
  ['gc', 64 << 20, 25],
  ['worker', 4 << 20, 100],
];

for (const [mode, size, trials] of cases) {
  const freedBy = mode === 'gc' ? 'garbage collection (V8 frees on a background thread)' : 'a worker thread it was transferred to';
  test(`${size >> 10} KiB buffers freed by ${freedBy} and reused at once: no stale hit in ${trials} trials`, async (t) => {
    const counts = await race(mode, size, trials);
    t.diagnostic(JSON.stringify(counts));
    assert.deepEqual({ stale: counts.stale, lostBytes: counts.lostBytes }, { stale: 0, lostBytes: 0 });
    // The scenario happened: new buffers landed where registered ones had been.
    assert.ok(counts.reused > 0, 'no address was reused: the test exercised nothing');
  });
}

test('memory replaced by a native thread: a lookup racing its UNMAP event never hits the old registration', () => {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const SIZE = 64 << 10;
  const TRIALS = 200;
  using buffer = allocate(SIZE);
  const data = t.pair.pd.registerMemory(Buffer.alloc(SIZE, 0x5a));
  let stale = 0;
  let lostBytes = 0;
  let racingHits = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const bytes = buffer.bytes;
    bytes.fill(0xff);
    cache.register(bytes, remoteAccess).close();
    const hits = cache.stats().hits;
    native.testing.remapOnThread(buffer.address, SIZE);
    waitForFreshPage(bytes);
    const region = cache.register(bytes, remoteAccess);
    racingHits += cache.stats().hits - hits;
    assert.equal(rdmaWrite(t.pair, data, region.remote()), 'SUCCESS');
    const lost = differingBytes(bytes, data.bytes);
    if (lost > 0) stale++;
    lostBytes += lost;
    region.close();
  }
  assert.deepEqual({ stale, lostBytes, racingHits }, { stale: 0, lostBytes: 0, racingHits: 0 }, 'every lookup after a replacement is a miss');
});
