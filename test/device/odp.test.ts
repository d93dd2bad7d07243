import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { Access, RdmaError, allocate, odpMisplaces, odpMissing, type LoopbackPair, type MappedBuffer, type MemoryRegion } from '../../lib';
import { differingBytes, rdmaWrite, rdmaWrites } from '../support/memory';
import { deviceName, open, pair, random, remoteAccess } from '../support/fixture';
import { randomRounds } from '../support/regcache-rounds';

// Every test asks the device first (queryDevice's ODP capabilities, as the library does) and checks what
// must happen either way: rxe has ODP on sid's kernel, none on bookworm's (`--kernel bookworm`). Where the
// placement of data matters, the module the VM loaded (RDMA_NODE_RXE) says what must be seen: every byte in
// place on the patched one, the misplacement on the stock one.
const patched = process.env.RDMA_NODE_RXE === 'patched';
const SIZE = 64 << 10;
const PAGE = 4096;
// The stock rxe's ODP copy puts every packet at the start of its page (see rxe-fixes.test.ts), so the
// writes that check ODP on either module are single packets at page starts: one per page, of this many bytes.
const PIECE = 1000;

function odpMissingHere(): string | undefined {
  using context = open();
  return odpMissing(context.queryDevice().odpCaps, 'rc', remoteAccess);
}

const isEopnotsupp = (verb: string) => (error: unknown) =>
  error instanceof RdmaError && error.code === 'EOPNOTSUPP' && error.errno === 95 && error.verb === verb;

/** Writes fresh random bytes at the start of every page of `target` (over `buffer`); returns how many did not land. */
function writePageStarts(loop: LoopbackPair, data: MemoryRegion, target: MemoryRegion, buffer: MappedBuffer): number {
  data.bytes.set(random(SIZE));
  const pages = Array.from({ length: SIZE / PAGE }, (_, page) => page * PAGE);
  const statuses = rdmaWrites(loop, pages.map((at) => ({ source: data, offset: at, length: PIECE, target: target.remote(at, PIECE) })));
  assert.deepEqual(new Set(statuses), new Set(['SUCCESS']));
  return pages.reduce((lost, at) => lost + differingBytes(buffer.bytes.subarray(at, at + PIECE), data.bytes.subarray(at, at + PIECE)), 0);
}

test('an ODP registration follows the memory mapped at its addresses; without ODP it is a clear EOPNOTSUPP', () => {
  using t = pair();
  const loop = t.pair;
  const buffer = allocate(SIZE);
  const register = () => loop.pd.registerMemory(buffer.bytes, remoteAccess | Access.ON_DEMAND);
  if (odpMissingHere() !== undefined) {
    assert.throws(register, isEopnotsupp('ibv_reg_mr'));
    return;
  }
  const odp = register();
  const data = loop.pd.registerMemory(Buffer.alloc(SIZE));
  assert.equal(writePageStarts(loop, data, odp, buffer), 0);
  for (const change of [() => buffer.remap(), () => buffer.discard(), () => (buffer.unmap(), buffer.remap())]) {
    change();
    assert.equal(writePageStarts(loop, data, odp, buffer), 0, 'the writes reach the pages mapped now');
  }
});

test("a cache with 'odp' reuses registrations across remapping with no invalidation; 'auto' takes ODP where the probe finds it right", () => {
  using t = pair();
  const loop = t.pair;
  using auto = loop.pd.createRegistrationCache();
  if (odpMissingHere() !== undefined) {
    assert.equal(auto.strategy, 'monitor');
    assert.throws(() => loop.pd.createRegistrationCache({ strategy: 'odp' }), isEopnotsupp('ibv_reg_mr'));
    return;
  }
  assert.equal(auto.strategy, patched ? 'odp' : 'monitor', auto.reason);
  using cache = loop.pd.createRegistrationCache({ strategy: 'odp' });
  assert.equal(cache.strategy, 'odp');
  const buffer = allocate(SIZE);
  const data = loop.pd.registerMemory(Buffer.alloc(SIZE));
  cache.register(buffer.bytes, remoteAccess).close();
  buffer.remap();
  const region = cache.register(buffer.bytes, remoteAccess);
  assert.deepEqual(cache.stats(), { ...cache.stats(), hits: 1, misses: 1, invalidations: 0 });
  assert.equal(writePageStarts(loop, data, region, buffer), 0, 'the reused ODP registration reaches the new memory');
  // The hit's region follows the buffer now mapped there (the old one was detached by remap()): it is a
  // local source as well as a target.
  buffer.bytes.set(random(PIECE));
  const sink = loop.pd.registerMemory(Buffer.alloc(PIECE), remoteAccess);
  assert.equal(rdmaWrite(loop, region, sink.remote(), PIECE), 'SUCCESS');
  assert.equal(differingBytes(sink.bytes, buffer.bytes.subarray(0, PIECE)), 0);
  region.close();
  // Freeing still drops the registration: it would keep an rkey to the address range alive for nothing.
  buffer.close();
  assert.deepEqual(cache.stats(), { ...cache.stats(), entries: 0, invalidations: 1 });
});

test('advise (prefetch) is EOPNOTSUPP where the provider has no advise_mr, and works where it has', () => {
  using t = pair();
  const loop = t.pair;
  const buffer = allocate(SIZE);
  const odp = odpMissingHere() === undefined;
  const region = loop.pd.registerMemory(buffer.bytes, remoteAccess | (odp ? Access.ON_DEMAND : 0));
  assert.throws(() => region.advise('prefetch', { offset: SIZE, length: 1 }), RangeError);
  assert.throws(() => region.advise('fetch' as never), TypeError);
  try {
    region.advise('prefetch-write', { flush: true });
  } catch (error) {
    assert.ok(isEopnotsupp('ibv_advise_mr')(error), String(error));
    return;
  }
  const data = loop.pd.registerMemory(Buffer.alloc(SIZE));
  assert.equal(writePageStarts(loop, data, region, buffer), 0);
});

test("advise (prefetch) for real with sid's rdma-core, in a chroot of sid (the host's rdma-core untouched)", (t) => {
  const root = process.env.RDMA_NODE_SUITE_ROOT;
  if (root === undefined) {
    assert.equal(patched, false, 'the patched VM brings a chroot of sid');
    return;
  }
  // A private mount namespace: the device, /proc, /sys, this checkout and this node, bound into the chroot.
  const script = [
    'mount --rbind /dev "$1/dev"', 'mount -t proc proc "$1/proc"', 'mount --rbind /sys "$1/sys"',
    'mount --bind "$2" "$1/project"', 'mount --bind "$3" "$1/usr/local/bin/node"',
    'exec chroot "$1" /usr/local/bin/node /project/dist/test/device/advise-child.js',
  ].join(' && ');
  const project = join(__dirname, '..', '..', '..');
  const output = execFileSync('unshare', ['--mount', '--fork', 'sh', '-c', script, 'sh', root, project, process.execPath], {
    encoding: 'utf8', timeout: 120_000, env: { ...process.env, RDMA_NODE_DEVICE: deviceName() },
  });
  const result = JSON.parse(output.trim().split('\n').at(-1)!) as { libibverbs: string; pages: number; before: number; afterPrefetch: number; status: string; misplaced: number };
  t.diagnostic(`${result.libibverbs}: ${result.before} of ${result.pages} pages present before prefetch-write, ${result.afterPrefetch} after`);
  const version = Number(/libibverbs\.so\.1\.\d+\.(\d+)/.exec(result.libibverbs)?.[1]);
  assert.ok(result.libibverbs.startsWith('/usr/lib/') && version >= 59, `sid's libibverbs (rdma-core ≥ 59) in use: ${result.libibverbs}`);
  assert.equal(result.before, 0, 'fresh pages, never touched');
  assert.equal(result.afterPrefetch, result.pages, 'prefetch-write with flush faulted every page in');
  assert.equal(result.status, 'SUCCESS');
  assert.equal(result.misplaced, 0);
});

test(`the ODP probe on the ${patched ? 'patched' : 'stock'} rdma_rxe finds ${patched ? 'every byte in place' : 'the misplacement'}`, () => {
  if (odpMissingHere() !== undefined) return;
  using context = open();
  const verdict = odpMisplaces(context);
  if (patched) assert.equal(verdict, undefined);
  else assert.match(verdict ?? '', /^ODP misplaces data on this device: [1-9]\d* of 3172 bytes/);
  assert.equal(odpMisplaces(context), verdict, 'one probe per device and process');
});

// On the stock module a thousand rounds lose bytes by the million already.
const ROUNDS = patched ? 10_000 : 1000;

test(`${ROUNDS} random rounds through a cache with 'odp' on the ${patched ? 'patched rdma_rxe lose no byte' : 'stock rdma_rxe lose bytes'}`, (t) => {
  if (odpMissingHere() !== undefined) return;
  using p = pair();
  const result = randomRounds(p.pair, 'odp', ROUNDS);
  for (const line of result.summary) t.diagnostic(line);
  t.diagnostic(`${result.lost} bytes not where the writes put them`);
  assert.equal(result.failed, 0, 'every RDMA write completes successfully');
  if (patched) assert.equal(result.lost, 0, 'no byte lost');
  else assert.ok(result.lost > 0, 'the stock module loses bytes of writes that start mid-page');
  assert.ok(result.stats.hits > 0 && result.stats.misses > 0, JSON.stringify(result.stats));
});
