import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runSoak, summary } from '../../lib/tools/soak/soak';

// The soak's short run (`npm run soak` runs the same code for 30 minutes; RELIABILITY.md has one such
// run): 60 s of RC verbs traffic to two peer processes, each SIGKILLed and restarted after 15 s of traffic
// (and after one verified round of each kind at least), endpoints to them, and registration churn through
// a registration cache, every byte verified; RSS, fds and the kernel's RDMA objects sampled every 3 s,
// not growing, and nothing left once it is over.
test('soak, short: mixed traffic with peer restarts and registration churn, every byte verified, no lost completion, nothing growing or left behind', async () => {
  // Growth is judged when there are samples enough with both peers up (a busy host can make peers take
  // half a minute to start); the 30-minute run always judges it.
  const report = await runSoak({ durationMs: 60_000, sampleEveryMs: 3_000, restartEveryMs: 15_000, requireGrowthJudgement: false, log: () => undefined });
  const text = summary(report);
  console.log(text);
  assert.deepEqual(report.failures, [], text);
  const { rc, peerRc, endpoints, regcache, restarts } = report.totals;
  assert.ok(restarts >= 1, `peers restarted (${restarts})`); // each life verifies some of every kind of traffic before its kill
  assert.ok(rc.received > 0 && peerRc.received > 0, 'RC traffic verified both ways');
  assert.ok(endpoints.roundTrips > 0 && endpoints.writes > 0 && endpoints.reads > 0, 'endpoint traffic verified');
  assert.ok(regcache.writes > 0 && regcache.invalidations > 0, 'registration churn ran and invalidated');
  assert.deepEqual(report.growth.filter((check) => check.judged !== false && !check.ok), [], 'what could be judged did not grow');
});
