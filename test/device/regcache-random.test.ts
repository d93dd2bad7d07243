import assert from 'node:assert/strict';
import { test } from 'node:test';

import { monitorStatus } from '../../lib';
import { pair } from '../support/fixture';
import { randomRounds } from '../support/regcache-rounds';

const ROUNDS = 10_000;

test(`${ROUNDS} random rounds of allocate, register, free, unmap, remap (here and on another thread), discard, move, GC and RDMA write lose no byte`, (t) => {
  using p = pair();
  const events = monitorStatus();
  const result = randomRounds(p.pair, 'monitor', ROUNDS);
  const after = monitorStatus();
  for (const line of result.summary) t.diagnostic(line);
  t.diagnostic(`monitor: ${after.unmapEvents - events.unmapEvents} unmap, ${after.removeEvents - events.removeEvents} remove, ${after.remapEvents - events.remapEvents} remap events, ${after.faults - events.faults} faults`);
  assert.equal(result.failed, 0, 'every RDMA write completes successfully');
  assert.equal(result.lost, 0, 'no byte may be lost to a stale registration');
  // The run must have exercised what it claims to: hits, and registrations made stale and caught.
  const { stats } = result;
  assert.ok(stats.hits > 0 && stats.misses > 0 && stats.invalidations > 0, JSON.stringify(stats));
  assert.ok(after.unmapEvents > events.unmapEvents && after.removeEvents > events.removeEvents && after.remapEvents > events.remapEvents);
});
