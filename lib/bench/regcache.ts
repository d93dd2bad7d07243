/**
 * `npm run bench:regcache`: what a registration-cache hit costs against ibv_reg_mr + ibv_dereg_mr, for
 * 4 KiB to 64 MiB, and what the userfaultfd monitor adds to munmap. Reported as ratios from one run (the
 * VM's absolute times mean little: it is emulated and shared); with --write, also into a section of
 * BENCHMARKS-regcache.md. Runs in the Soft-RoCE VM when this host has no RDMA device.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { hostHasDevice, insideVm, rerunInVm } from '../harness/device-host';
import { Access, CrossingCounter, allocate, monitorStatus, openDevice, type RegistrationCache } from '..';
import { native } from '../native';
import { byteLabel, timeLabel } from './units';

const KiB = 1024;
const MiB = 1024 * KiB;
const sizes = [4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB, 16 * MiB, 64 * MiB];
const munmapSizes = [4 * KiB, 64 * KiB, MiB, 16 * MiB];
const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
const budgetNs = 300e6; // per measurement


/**
 * The JS hit as it cost before hits became views of their entry's region (a native region object per
 * hit), from the run of 2026-12-03 in the same VM setup: a different run, so compare loosely.
 */
const BEFORE_DATE = '2026-12-03';
const BEFORE_NS: Record<number, number> = {
  [4 * KiB]: 93_900, [16 * KiB]: 59_400, [64 * KiB]: 37_100, [256 * KiB]: 50_900,
  [MiB]: 44_200, [4 * MiB]: 32_200, [16 * MiB]: 31_800, [64 * MiB]: 71_300,
};

/** Native calls made by one register() + close() of a hit. */
function countHitCalls(cache: RegistrationCache): number {
  using memory = allocate(4 * KiB);
  cache.register(memory.bytes).close(); // the entry: the next register() is a hit
  const first = cache.register(memory.bytes);
  using counter = new CrossingCounter().watch(cache.handle, first.handle);
  first.close();
  counter.reset();
  cache.register(memory.bytes).close();
  return counter.count;
}

/** Runs `measure(n)` (ns per iteration) with n sized from a first single run to fit the budget. */
function measure(measure: (iterations: number) => number, max: number): { ns: number; iterations: number } {
  const first = measure(1);
  const iterations = Math.max(3, Math.min(max, Math.floor(budgetNs / Math.max(first, 1))));
  return { ns: measure(iterations), iterations };
}

function jsLoop(iterations: number, body: () => void): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) body();
  return Number(process.hrtime.bigint() - start) / iterations;
}

function run(): string[] {
  using context = openDevice(process.env.RDMA_NODE_DEVICE);
  const pd = context.allocPd();
  using cache = pd.createRegistrationCache({ strategy: 'monitor', maxBytes: 256 * MiB });
  // Warm the JIT up on both JS paths first, so the first rows do not pay for compilation.
  {
    using warm = allocate(4 * KiB);
    for (let i = 0; i < 5000; i++) {
      pd.registerMemory(warm.bytes, access).close();
      cache.register(warm.bytes, access).close();
    }
  }
  // What one crossing into the addon costs here, and how many a hit's register() + close() makes.
  jsLoop(200_000, () => cache.handle.closed); // warm
  const callCost = jsLoop(200_000, () => cache.handle.closed);
  const calls = countHitCalls(cache);
  const lines = [
    `One call into the addon (an accessor) costs ${timeLabel(callCost)} here; \`cache.register()\` + \`close()\` of a hit makes ${calls} calls.`,
    '',
    `| size | ibv_reg_mr + ibv_dereg_mr | cache hit (C) | of which the catch-up ioctl | ratio | pd.registerMemory().close() (JS) | cache.register().close() (JS) | in calls | ratio | JS hit, before (${BEFORE_DATE}) | now / before |`,
    `| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ];
  const excess: number[] = []; // JS hit minus (C hit + its calls): argument conversion, the view, noise
  for (const bytes of sizes) {
    using buffer = allocate(bytes);
    const view = buffer.bytes; // once: the getter is a native call of its own
    view.fill(1); // present pages: the registration cost is pinning, not first-touch faults
    const ab = buffer.arrayBuffer;
    const reg = measure((n) => native.testing.benchRegDereg(pd.handle, ab, 0, bytes, access, n), 2000);
    cache.register(view, access).close();
    const hit = measure((n) => native.testing.benchCacheHits(cache.handle, ab, 0, bytes, access, n), 200_000);
    const catchUp = measure((n) => native.testing.benchCatchUp(ab, 0, bytes, n), 200_000);
    const jsReg = measure((n) => jsLoop(n, () => pd.registerMemory(view, access).close()), 2000);
    const jsHit = measure((n) => jsLoop(n, () => cache.register(view, access).close()), 20_000);
    const before = BEFORE_NS[bytes]!;
    lines.push(
      `| ${byteLabel(bytes)} | ${timeLabel(reg.ns)} | ${timeLabel(hit.ns)} | ${timeLabel(catchUp.ns)} | ${(reg.ns / hit.ns).toFixed(0)}× | ${timeLabel(jsReg.ns)} | ${timeLabel(jsHit.ns)} | ` +
        `${(jsHit.ns / callCost).toFixed(1)} | ${(jsReg.ns / jsHit.ns).toFixed(1)}× | ${timeLabel(before)} | ${(jsHit.ns / before).toFixed(2)} |`,
    );
    console.log(lines[lines.length - 1]);
    excess.push(jsHit.ns - hit.ns - calls * callCost);
  }
  excess.sort((a, b) => a - b);
  lines.push(
    '',
    `Where a JS hit's time goes: the C hit (most of it the catch-up ioctl) plus ${calls} calls × ${timeLabel(callCost)}; ` +
      `the rest (median ${timeLabel(excess[excess.length >> 1]!)}, from ${timeLabel(excess[0]!)} to ${timeLabel(excess[excess.length - 1]!)}) is ` +
      'converting the arguments (buffer, access, the out array), making the view object, and the emulated VM\'s noise.',
  );
  const stats = cache.stats();
  lines.push('', `Cache after the run: ${stats.hits} hits, ${stats.misses} misses, ${stats.invalidations} invalidations.`, '');
  lines.push(`| munmap of | not monitored | monitored (userfaultfd UNMAP event) | overhead |`, `| ---: | ---: | ---: | ---: |`);
  for (const bytes of munmapSizes) {
    const plain = measure((n) => native.testing.benchMunmap(bytes, false, n), 500);
    const watched = measure((n) => native.testing.benchMunmap(bytes, true, n), 500);
    lines.push(`| ${byteLabel(bytes)} | ${timeLabel(plain.ns)} | ${timeLabel(watched.ns)} | +${timeLabel(watched.ns - plain.ns)} (${(watched.ns / plain.ns).toFixed(1)}×) |`);
    console.log(lines[lines.length - 1]);
  }
  return lines;
}

const heading = '## Registration cache hit vs registration, and munmap under the monitor';

function writeSection(lines: string[]): void {
  const file = join(__dirname, '..', '..', '..', 'BENCHMARKS-regcache.md');
  const where = insideVm() ? 'the Soft-RoCE VM (qemu TCG, 2 vCPUs, shared host: absolute times are noisy, ratios within one run are what count)' : 'this host';
  const section = [
    heading,
    '',
    `Measured on rxe in ${where}, Linux ${release()}, ${new Date().toISOString().slice(0, 10)}, by \`npm run bench:regcache\`.`,
    'Hits and registrations are timed in C (native/testing/hooks.cc) over the same memory: a hit is the',
    'interval-tree lookup, its validity check (one UFFDIO_ZEROPAGE ioctl proving that no unmap is still on its',
    "way to the monitor, timed alone in its own column, then the lock-free generation compare), and taking and",
    'returning the entry; the JS columns are what a caller pays per call, object creation included ("in calls":',
    'the JS hit in units of one call into the addon measured in the same run).',
    'Memory was touched before timing, so registration cost is pinning and translation, not first faults.',
    'munmap is timed alone, on populated private anonymous memory, with and without the range registered',
    "with the monitor's userfaultfd (the kernel then waits until the handler thread has read the event).",
    '',
    ...lines,
    '',
  ].join('\n');
  let text = '# Benchmarks: registration cache\n\n';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // first run: start the file
  }
  const start = text.indexOf(heading);
  const end = start < 0 ? -1 : text.indexOf('\n## ', start + heading.length);
  text = start < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, start)}${section}${end < 0 ? '' : text.slice(end + 1)}`;
  writeFileSync(file, text);
  console.log(`written to ${file}`);
}

async function main(): Promise<number> {
  if (!insideVm() && !hostHasDevice()) {
    console.log('This host has no RDMA device: running the benchmark on Soft-RoCE inside the VM.');
    return rerunInVm(__filename, process.argv.slice(2), 30 * 60_000);
  }
  if (!monitorStatus().available) throw new Error(`the benchmark needs userfaultfd (${monitorStatus().error})`);
  const lines = run();
  if (parseArgs({ options: { write: { type: 'boolean' } } }).values.write) writeSection(lines);
  return 0;
}

main().then(
  (status) => (process.exitCode = status),
  (error: Error) => {
    console.error(`bench:regcache: ${error.message}`);
    process.exitCode = 1;
  },
);
