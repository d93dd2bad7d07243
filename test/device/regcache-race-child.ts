/**
 * Child process of regcache-race.test: `node --expose-gc regcache-race-child.js <gc|worker> <size> <trials>`,
 * run with the mmap threshold lowered (MALLOC_MMAP_THRESHOLD_) so that every buffer is a mapping of its own.
 * Each trial registers a buffer through a monitored cache, lets it go (collected on this thread: `gc`; or
 * transferred to a worker that drops it and collects: `worker`), at once allocates a new buffer, which often
 * lands at the old address, registers it and RDMA-writes into it. Prints one JSON line of counts.
 */
import { isMainThread, parentPort, Worker } from 'node:worker_threads';

import { pair, remoteAccess } from '../support/fixture';
import { differingBytes, rdmaWrites } from '../support/memory';

export interface RaceCounts {
  trials: number;
  /** The new buffer landed at the old one's address. */
  reused: number;
  /** Its register() was a cache hit. */
  hits: number;
  /** Trials in which the write did not land in the new buffer. */
  stale: number;
  /** Bytes of the written samples that never reached the new buffer. */
  lostBytes: number;
}

const SAMPLE = 64 << 10;
const gc = (): void => global.gc!();

async function main(mode: string, size: number, trials: number): Promise<RaceCounts> {
  using t = pair();
  const loop = t.pair;
  using cache = loop.pd.createRegistrationCache({ strategy: 'monitor' });
  const sample = Math.min(size, SAMPLE);
  const data = loop.pd.registerMemory(Buffer.alloc(sample, 0xa5));
  const worker = mode === 'worker' ? new Worker(__filename) : undefined;
  const freed = (): Promise<void> => new Promise((resolve) => worker!.once('message', () => resolve()));
  const counts: RaceCounts = { trials, reused: 0, hits: 0, stale: 0, lostBytes: 0 };
  let hits = 0;
  for (let trial = 0; trial < trials; trial++) {
    // Registered and let go inside a function, so that nothing keeps the buffer reachable afterwards.
    const oldAddress = ((): bigint => {
      const old = new ArrayBuffer(size);
      const region = cache.register(old, remoteAccess);
      const address = region.addr;
      region.close();
      if (worker !== undefined) worker.postMessage(old, [old]);
      return address;
    })();
    if (worker === undefined) gc();
    else await freed();
    const fresh = Buffer.alloc(size);
    const region = cache.register(fresh, remoteAccess);
    const now = cache.stats().hits;
    if (region.addr === oldAddress) counts.reused++;
    if (now > hits) counts.hits++;
    hits = now;
    const statuses = rdmaWrites(loop, [
      { source: data, target: region.remote(0, sample) },
      { source: data, target: region.remote(size - sample, sample) },
    ]);
    if (statuses.some((status) => status !== 'SUCCESS')) throw new Error(`RDMA write failed: ${statuses.join(', ')}`);
    const lost = differingBytes(fresh.subarray(0, sample), data.bytes) + differingBytes(fresh.subarray(size - sample), data.bytes);
    if (lost > 0) counts.stale++;
    counts.lostBytes += lost;
    region.close();
  }
  await worker?.terminate();
  return counts;
}

if (isMainThread) {
  const [mode = 'gc', size = '4194304', trials = '100'] = process.argv.slice(2);
  main(mode, Number(size), Number(trials)).then(
    (counts) => console.log(JSON.stringify(counts)),
    (error: Error) => {
      console.error(error.stack);
      process.exitCode = 1;
    },
  );
} else {
  // The worker: takes each transferred buffer, drops it, collects (once the message is out of reach), and
  // says so.
  parentPort!.on('message', () => {
    setImmediate(() => {
      gc();
      parentPort!.postMessage('freed');
    });
  });
}
