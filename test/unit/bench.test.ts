import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BW_HEADING, LAT_HEADING, addressLines, bandwidthLine, latencyDurationLine, latencyLine, settingsBlock } from '../../lib/bench/format';
import { adoptShape, parseBenchArgs, resolveOptions, runSizes, shapeOf } from '../../lib/bench/options';
import { sprintf } from '../../lib/bench/printf';
import { Progress, renderProgress } from '../../lib/bench/progress';
import { bandwidthStats, latencyDurationStats, latencyStats, peakTicksPerMessage, type RawRun } from '../../lib/bench/stats';
import { escapeXml, niceTicks, plotSvg, sizeLabel } from '../../lib/bench/svg';
import { testInfo, testTitle } from '../../lib/bench/tests';

const resolve = (...argv: string[]): ReturnType<typeof resolveOptions> => resolveOptions(parseBenchArgs(argv));

function raw(fields: Partial<RawRun>): RawRun {
  return { ticksPerUsec: 1, first: 0, last: 0, sampleStart: 0, sampleEnd: 0, sampleIters: 0, scnt: 0, ccnt: 0, rcnt: 0, ...fields };
}

test('sprintf reproduces the C formats perftest prints with', () => {
  assert.equal(sprintf('%-7lu|', 65536), '65536  |');
  assert.equal(sprintf('%-10lu|', 200), '200       |');
  assert.equal(sprintf('%-7.2lf|', 26.5), '26.50  |');
  assert.equal(sprintf('%-7.6lf', 0.000317), '0.000317');
  assert.equal(sprintf('%04x %06x', 0x11, 0x539eb1), '0011 539eb1');
  assert.equal(sprintf('0x%014x', 0x555ebb1f6000n), '0x00555ebb1f6000');
  assert.equal(sprintf('%02d:%02d', 0, 255), '00:255');
  assert.equal(sprintf('%5d|%-4s|%%', -3, 'ab'), '   -3|ab  |%');
  assert.equal(sprintf('%05d', -42), '-0042');
  assert.equal(sprintf('%.2f %.2f %.2f', Infinity, -Infinity, NaN), 'inf -inf -nan');
  assert.throws(() => sprintf('%d %d', 1), RangeError);
});

test('report lines match perftest character for character', () => {
  assert.equal(
    bandwidthLine({ bytes: 65536, iterations: 200, peak: 26.5, average: 19.79, msgRate: 0.000317 }),
    ' 65536      200              26.50              19.79  \t\t   0.000317',
  );
  assert.equal(
    latencyLine({ bytes: 2, iterations: 200, min: 27.71, max: 5572.7, typical: 33.76, average: 193.98, stdev: 711.53, p99: 5316.29, p999: 5572.7 }),
    ' 2       200          27.71          5572.70      33.76    \t       193.98      \t711.53 \t\t5316.29 \t\t5572.70',
  );
  assert.equal(latencyDurationLine({ bytes: 2, iterations: 43781, average: 46.44, tps: 21531.42 }), ' 2             43781            46.44          21531.42');
  assert.match(BW_HEADING, /^ #bytes {5}#iterations {4}BW peak\[MB\/sec\] {4}BW average\[MB\/sec\] {3}MsgRate\[Mpps\]$/);
  assert.ok(LAT_HEADING.includes('t_typical[usec]') && LAT_HEADING.includes('99.9% percentile[usec]'));
});

test('address and settings blocks follow perftest', () => {
  const gid = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 0, 2, 15]);
  assert.deepEqual(addressLines('local', { lid: 0, qpNum: 0x13, psn: 0x1506aa, rkey: 0x455, vaddr: 0x555ebb1f6000n, gid }), [
    ' local address: LID 0000 QPN 0x0013 PSN 0x1506aa RKey 0x000455 VAddr 0x00555ebb1f6000',
    ' GID: 00:00:00:00:00:00:00:00:00:00:255:255:10:00:02:15',
  ]);
  assert.equal(addressLines('remote', { lid: 1, qpNum: 0x15, psn: 1, outReads: 128, gid })[0], ' remote address: LID 0001 QPN 0x0015 PSN 0x000001 OUT 0x80');
  const block = settingsBlock({
    title: 'RDMA_Read Latency Test', device: 'rxe0', connection: 'RC', txDepth: 1, mtu: 1024, linkLayer: 'Ethernet', gidIndex: 1,
    outReads: 128, rdmaCm: false, events: true, driver: 'C core',
  });
  assert.equal(block[1], '                    RDMA_Read Latency Test');
  assert.ok(block.includes(' Test with events.'));
  assert.ok(block.includes(' Outstand reads  : 128') && !block.some((l) => l.startsWith(' Max inline data')));
  assert.ok(block.includes(' Data ex. method : Ethernet') && block.includes(' TX depth        : 1'));
});

test('test table: transports, roles and titles', () => {
  assert.deepEqual(testInfo('send_bw'), { name: 'send_bw', verb: 'send', kind: 'bw', connections: ['RC', 'UC', 'UD'], server: 'active', rttFactor: 1 });
  assert.equal(testInfo('write_lat').rttFactor, 2);
  assert.equal(testInfo('read_lat').server, 'passive');
  assert.deepEqual(testInfo('atomic_bw').connections, ['RC']);
  assert.equal(testTitle(testInfo('write_bw')), 'RDMA_Write BW Test');
  assert.equal(testTitle(testInfo('atomic_lat'), 'CMP_AND_SWAP'), 'Atomic CMP_AND_SWAP Latency Test');
  assert.equal(testTitle(testInfo('send_lat')), 'Send Latency Test');
});

test('argument parsing: perftest flag spellings, positionals, errors', () => {
  const p = parseBenchArgs(['write_bw', '10.0.2.15', '-d', 'rxe0', '-x1', '--size=64', '-n', '2000', '-Q', '10', '--driver', 'ts', '-F', '-c', 'uc']);
  assert.deepEqual(p, { test: 'write_bw', host: '10.0.2.15', given: { device: 'rxe0', gidIndex: 1, size: 64, iters: 2000, cqMod: 10, driver: 'ts', connection: 'UC' } });
  assert.equal(parseBenchArgs(['send_lat']).host, undefined);
  assert.equal(parseBenchArgs(['--help']).given.help, true);
  assert.throws(() => parseBenchArgs([]), /which test/);
  assert.throws(() => parseBenchArgs(['write_bww']), /unknown test/);
  assert.throws(() => parseBenchArgs(['write_bw', '-z']), /invalid option -- 'z'/);
  assert.throws(() => parseBenchArgs(['write_bw', '-n', '3']), /between 5 and/);
  assert.throws(() => parseBenchArgs(['write_bw', '-s']), /requires an argument -- 's'/);
  assert.throws(() => parseBenchArgs(['write_bw', '-c', 'XRC']), /RC, UC, UD/);
  assert.throws(() => parseBenchArgs(['write_bw', 'a', 'b']), /unexpected argument b/);
  assert.throws(() => parseBenchArgs(['write_bw', '-ax']), /requires an argument -- 'x'/); // -a, then -x without its value
  assert.equal(parseBenchArgs(['write_bw', '-aeN']).given.events, true); // clustered, as getopt
});

test('defaults and perftest dependencies', () => {
  const bw = resolve('write_bw', 'h').options;
  assert.equal(bw.size, 65536);
  assert.equal(bw.iters, 5000);
  assert.equal(bw.txDepth, 128);
  assert.equal(bw.cqMod, 1, 'CQ moderation is off above 8 KiB');
  assert.equal(bw.driver, 'c');
  assert.equal(resolve('write_bw', 'h', '-s', '64').options.cqMod, 100);
  assert.equal(resolve('write_bw', 'h', '-s', '64', '-n', '50').options.txDepth, 50, 'TX depth at most the iterations');
  assert.equal(resolve('write_bw', 'h', '-s', '64', '-n', '50').options.cqMod, 50);
  const lat = resolve('send_lat', 'h').options;
  assert.deepEqual([lat.size, lat.iters, lat.txDepth, lat.cqMod, lat.rxDepth], [2, 1000, 1, 1, 512]);
  assert.equal(resolve('send_lat', 'h', '-n', '101').options.rxDepth, 102, 'odd RX depth rounded up, as perftest');
  assert.equal(resolve('atomic_lat', 'h').options.size, 8);
  assert.throws(() => resolve('atomic_bw', 'h', '-s', '16'), /cannot be changed for Atomic/);
  assert.throws(() => resolve('read_bw', 'h', '-c', 'UC'), /RC, not UC/);
  assert.equal(resolve('read_bw', 'h', '-I', '64').options.inlineSize, 0);
  assert.equal(resolve('send_bw', 'h', '-c', 'UD', '-I', '900').options.inlineSize, 884);
  const dur = resolve('write_bw', 'h', '-D', '8');
  assert.deepEqual([dur.options.iters, dur.options.margin, dur.options.noPeak], [0, 2, true]);
  assert.throws(() => resolve('write_bw', 'h', '-D', '4', '-f', '2'), /DURATION > 2\*MARGIN/);
  assert.throws(() => resolve('write_bw', 'h', '-D', '4', '-e'), /events/);
  assert.throws(() => resolve('write_bw', 'h', '-D', '4', '-a'), /all sizes/);
  assert.equal(resolve('write_bw', 'h', '-n', '30000').options.noPeak, true);
  assert.equal(resolve('send_bw').options.noPeak, true, 'the send_bw receiver never computes a peak');
  const list = resolve('write_bw', 'h', '-s', '64', '-l', '8').options;
  assert.deepEqual([list.postList, list.cqMod], [8, 8]);
  assert.throws(() => resolve('write_bw', 'h', '-s', '64', '-l', '8', '-Q', '3'), /multiple of CQ moderation/);
  assert.match(resolve('write_bw', 'h', '-Q', '4').warnings[0]!, /CQ moderation/);
  assert.throws(() => resolve('atomic_bw', 'h', '--odp'), /ODP/);
  assert.throws(() => resolve('send_bw', 'h', '-R', '-c', 'UD'), /RC only/);
  assert.throws(() => resolve('write_bw', 'h', '--plot', 'x.png'), /svg/);
});

test('sizes of -a, the server adopting the client shape', () => {
  assert.deepEqual(runSizes({ all: false, size: 64 }), [64]);
  const all = runSizes({ all: true, size: 0 });
  assert.deepEqual([all[0], all.length, all[all.length - 1]], [2, 23, 1 << 23]);
  assert.deepEqual(runSizes({ all: true, size: 0 }, 1024), [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]);
  const client = resolve('send_bw', 'h', '-s', '64', '-n', '100', '--driver', 'ts', '-e').options;
  const server = adoptShape(resolve('send_bw', '-d', 'rxe0', '-p', '9000').options, shapeOf(client));
  assert.deepEqual([server.size, server.iters, server.driver, server.events, server.device, server.port, server.noPeak], [64, 100, 'ts', true, 'rxe0', 9000, true]);
});

test('latency statistics as perftest computes them', () => {
  // Posts 10 ticks apart with one slow gap: 9 gaps, the two largest left out.
  const posted = Float64Array.from([0, 10, 20, 30, 40, 50, 60, 100, 110, 120]);
  const s = latencyStats(raw({ posted, ticksPerUsec: 2 }), 2, 10, 2);
  assert.equal(s.min, 2.5);
  assert.equal(s.typical, 2.5);
  assert.equal(s.max, 2.5, 't_max is the largest kept sample');
  assert.equal(s.p99, 2.5);
  assert.equal(s.p999, 2.5, 'the two slowest samples never count');
  assert.equal(s.average, 2.5);
  assert.equal(s.stdev, 0);
  const uneven = latencyStats(raw({ posted: Float64Array.from([0, 1, 3, 6, 10, 15]) }), 8, 6, 1);
  assert.equal(uneven.typical, 2, 'median of [1, 2, 3]');
  assert.equal(uneven.average, 2);
  assert.ok(Math.abs(uneven.stdev - Math.sqrt(2 / 3)) < 1e-12);
  const even = latencyStats(raw({ posted: Float64Array.from([0, 1, 3, 6, 10, 15, 21]) }), 8, 7, 1);
  assert.equal(even.typical, 2.5, 'median of four: mean of the middle two');
  assert.throws(() => latencyStats(raw({}), 2, 10, 2), RangeError);
  const d = latencyDurationStats(raw({ sampleStart: 1000, sampleEnd: 3000, sampleIters: 100, ticksPerUsec: 1000 }), 2, 2);
  assert.deepEqual(d, { bytes: 2, iterations: 100, average: 0.01, tps: 50_000_000 });
});

test('bandwidth statistics: average, message rate, peak', () => {
  const MB = 2 ** 20;
  // 4 messages of 1 MiB over 2 s (ticks are microseconds).
  const run = raw({ first: 0, last: 2e6 });
  assert.deepEqual(bandwidthStats(run, MB, 4, { window: 'run', peak: false }), { bytes: MB, iterations: 4, peak: 0, average: 2, msgRate: 2e-6 });
  const sampled = raw({ sampleStart: 5e5, sampleEnd: 1.5e6, sampleIters: 3 });
  assert.equal(bandwidthStats(sampled, MB, 999, { window: 'sample', peak: true }).average, 3);
  // Posts at 1..4, signaled completions only at 2 and 4 (cq_mod 2): best is posts 3..4 done at 4.5.
  const posted = Float64Array.from([1, 2, 3, 4]);
  const completed = Float64Array.from([0, 5, 0, 9]);
  assert.equal(peakTicksPerMessage(posted, completed, 4), 2);
  const peakRun = raw({ posted, completed, first: 1, last: 9, ticksPerUsec: 1e-6 });
  const s = bandwidthStats(peakRun, MB, 4, { window: 'run', peak: true });
  assert.equal(s.peak, 0.5);
  assert.equal(s.average, 0.5, 'from the first post to the last completion');
});

test('SVG plot: axes, series, escaping', () => {
  assert.equal(sizeLabel(2048), '2K');
  assert.equal(sizeLabel(8 << 20), '8M');
  assert.equal(sizeLabel(1000), '1000');
  assert.deepEqual(niceTicks(37), [0, 10, 20, 30, 40]);
  assert.deepEqual(niceTicks(0.9), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0), [0, 1]);
  assert.equal(escapeXml('a<b & "c"'), 'a&lt;b &amp; &quot;c&quot;');
  const svg = plotSvg(
    [
      { name: 'BW average', points: [[2, 1], [4, 2], [8, NaN], [65536, 30]] },
      { name: 'BW <peak>', points: [[2, 2], [65536, 38]] },
    ],
    { title: 'RDMA_Write BW Test on rxe0', yLabel: 'bandwidth [MB/sec]' },
  );
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
  assert.equal((svg.match(/<circle /g) ?? []).length, 5, 'non-finite values are left out');
  assert.ok(svg.includes('BW &lt;peak&gt;') && svg.includes('>32K<') && svg.includes('>40<'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.match(plotSvg([], { title: 't', yLabel: 'y' }), /<\/svg>/);
});

test('progress bar: rendering, only on a terminal, erased at the end', () => {
  assert.equal(renderProgress(0.5, 'write_bw', 10), '[#####.....]  50%  write_bw');
  assert.equal(renderProgress(2, 'x', 4), '[####] 100%  x');
  assert.equal(renderProgress(NaN, 'x', 4), '[....]   0%  x');
  const written: string[] = [];
  const pipe = new Progress({ isTTY: false, write: (t: string) => written.push(t) }, 0);
  pipe.start('a');
  pipe.update(0.5);
  pipe.done();
  assert.equal(written.length, 0);
  const tty = new Progress({ isTTY: true, write: (t: string) => written.push(t) }, 0);
  tty.start('b');
  tty.update(0.25);
  tty.done();
  assert.equal(written.length, 2);
  assert.match(written[0]!, /^\r\[.*\]  25%  b$/);
  assert.equal(written[1], '\r\x1b[2K');
});
