import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  listening, median, metrics, parsePerftest, renderBenchmarks, shortfallNotes, spread, verdict, type Environment, type MetricResult,
} from '../../lib/bench/compare-report';

const latOutput = `---------------------------------------------------------------------------------------
 #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] 
 2       200          27.71          5572.70      33.76    \t       193.98      \t711.53 \t\t5316.29 \t\t5572.70
---------------------------------------------------------------------------------------
`;
const bwOutput = ` #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]
 65536      200              26.50              19.79  \t\t   0.000317
`;

test('perftest output is read from its result line', () => {
  assert.deepEqual(parsePerftest(latOutput), { typical: 33.76, average: 193.98, msgRate: NaN });
  assert.deepEqual(parsePerftest(bwOutput), { typical: NaN, average: 19.79, msgRate: 0.000317 });
  assert.equal(parsePerftest('Couldn\'t connect to 10.0.2.15:18515\n'), undefined);
  assert.equal(parsePerftest(' #bytes #iterations\n inf nan\n'), undefined);
});

test('a listening socket is found in /proc/net/tcp', () => {
  const proc = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:4853 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0F02000A:4853 0F02000A:9C40 06 00000000:00000000 03:00000be0 00000000     0        0 0 3 0`;
  assert.equal(listening(proc, 18515), true);
  assert.equal(listening(proc.replace(' 0A ', ' 06 '), 18515), false, 'TIME_WAIT is not listening');
  assert.equal(listening(proc, 18516), false);
});

test('medians, spreads and verdicts against the targets', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([NaN, 5]), 5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(spread([9, 10, 11]), 0.2);
  assert.ok(Number.isNaN(spread([1])));
  const lat: MetricResult = { metric: metrics[0]!, rounds: [{ perftest: 40, c: 40.2, ts: 50 }, { perftest: 40, c: 40.4, ts: 41 }], failures: [] };
  assert.deepEqual(verdict(lat, 'c'), { perftest: 40, value: 40.3, ratio: 40.3 / 40, met: true });
  assert.equal(verdict(lat, 'ts').met, false, '45.5 / 40 is above 1.05');
  const rate: MetricResult = { metric: metrics[4]!, rounds: [{ perftest: 0.02, c: 0.0199, ts: 0.018 }], failures: [] };
  assert.equal(verdict(rate, 'c').met, true);
  assert.equal(verdict(rate, 'ts').met, false);
  const broken: MetricResult = { metric: metrics[4]!, rounds: [{ perftest: NaN, c: 1, ts: 1 }], failures: ['x'] };
  assert.equal(verdict(broken, 'c').met, false, 'no perftest number, no verdict');
});

test('BENCHMARKS.md holds the table, every round, the notes and the sweep', () => {
  const env: Environment = {
    date: '2026-11-24 12:00 UTC', kernel: '7.2.13', cpus: 2, device: 'rxe0', gidIndex: 1, rdmaCore: '44.0-2', perftest: '4.5+0.17-1',
    node: 'v20', rounds: 1, durationS: 200, callCosts: [{ label: 'cq.poll', usec: 3.5 }],
  };
  const results: MetricResult[] = metrics.map((metric) => ({
    metric,
    rounds: [{ perftest: 10, c: 10, ts: metric.kind === 'latency' ? 20 : 5 }],
    failures: metric.id === 'read_bw' ? ['round 1, ts: boom'] : [],
    perOp: { calls: 2, gcUsec: 0.5 },
  }));
  const notes = shortfallNotes(results, env, { cCoreUsec: 19, typeScriptUsec: 45, outsideUsec: 1.5 });
  assert.ok(notes.some((n) => n.includes('19.0 usec per read')), notes.join('\n'));
  assert.ok(notes[0]!.includes('C core meets'));
  assert.ok(notes.some((n) => n.includes('cq.poll: 3.50 usec')));
  // send_lat: a round trip per iteration, 2 × (20 - 10) usec more; 2 calls × 3.5 usec; 0.5 usec of GC.
  assert.ok(notes.some((n) => n.includes('send latency, 2 B: 2.000 (target ≤ 1.1); 20.0 usec more per operation; 2.00 calls = 7.0 usec, GC 0.50 usec, the rest 12.5 usec.')), notes.join('\n'));
  // 64 B write rate: 1/5 - 1/10 Mpps = 0.1 usec more per message.
  assert.ok(notes.some((n) => n.includes('RDMA write message rate, 64 B: 0.500 (target ≥ 0.9); 0.1 usec more per operation')), notes.join('\n'));
  const md = renderBenchmarks(env, results, [
    { connections: 1, qps: 2, createUsPerQp: 500, connectUsPerQp: 700, rssKiBPerQp: 12, kernelKiBPerQp: 30, messages: 20000, msgRate: 0.05 },
    { connections: 2, qps: 4, createUsPerQp: 500, connectUsPerQp: 700, rssKiBPerQp: 12, kernelKiBPerQp: 30, messages: 0, failure: 'stalled' },
  ], notes, [{ label: 'send()/receive() round trip, 2 B', endpointUsec: 300, rawUsec: 100 }]);
  assert.match(md, /^# Benchmarks\n/);
  assert.ok(md.includes('| send latency, 2 B [usec] | 10.00 | 10.00 | 1.000 meets ≤ 1.01 | 20.00 | 2.000 misses ≤ 1.1 | 2.00 |'));
  assert.ok(md.includes('| send latency, 2 B, events [usec] | 10.00 | 10.00 | 1.000 meets ≤ 1.02 | 20.00 | 2.000 misses ≤ 1.15 | 2.00 |'));
  assert.ok(md.includes('| send()/receive() round trip, 2 B | 300.0 | 100.0 | 3.00 |'));
  assert.ok(md.includes('| write_rate | 1 | 10.000000 | 10.000000 | 5.000000 |'));
  assert.ok(md.includes('- read_bw: round 1, ts: boom'));
  assert.ok(md.includes('| 1 | 2 | 500.0 | 700.0 | 12.0 | 30.0 | 20000 | 0.050000 |'));
  assert.ok(md.includes('failed: stalled'));
});
