/** Worker-thread half of the regcache test: its own device context and monitored cache, one stale scenario. */
import { parentPort } from 'node:worker_threads';

import { allocate } from '../../lib';
import { pair, random, remoteAccess } from '../support/fixture';
import { differingBytes, rdmaWrite } from '../support/memory';

function run(): { landed: boolean; strategy: string } {
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const buffer = allocate(64 << 10);
  cache.register(buffer.bytes, remoteAccess).close();
  buffer.remap();
  const data = t.pair.pd.registerMemory(random(64 << 10));
  const region = cache.register(buffer.bytes, remoteAccess);
  const landed = rdmaWrite(t.pair, data, region.remote()) === 'SUCCESS' && differingBytes(buffer.bytes, data.bytes) === 0;
  return { landed: landed && cache.stats().invalidations === 1, strategy: cache.strategy };
}

parentPort!.postMessage(run());
