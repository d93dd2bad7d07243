import assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { Worker } from 'node:worker_threads';

import { Access, WrOpcode, allocate, getSegment, makeSegment, type RdmaError } from '../../lib';
import { pair } from '../support/fixture';
import { fill, killPeers, mismatches, patternByte, runPeer, startPeer } from '../support/segment-peer';

afterEach(killPeers);

// Segments between processes (segment-peer.ts runs each peer), every byte checked. As root in the VM,
// with peers as nobody where the permit is what is tested.
const peer = join(__dirname, '..', 'support', 'segment-peer.js'); // for fork()
const NOBODY = 65_534;

test('8 processes attach one segment: readers see every byte, concurrent writers to disjoint ranges all land', async () => {
  const size = 8 * 65_536;
  using segment = makeSegment(size);
  using own = segment.attach();
  fill(own.bytes, 1);
  const readers = await Promise.all(Array.from({ length: 8 }, (_, i) => runPeer(['read', segment.id, String(i * 65_536), '65536', '1'])));
  assert.deepEqual(readers.map((r) => r.line), Array(8).fill('ok'));
  const writers = await Promise.all(Array.from({ length: 8 }, (_, i) => runPeer(['write', segment.id, String(i * 65_536), '65536', String(10 + i)])));
  assert.deepEqual(writers.map((w) => w.line), Array(8).fill('written'));
  for (let i = 0; i < 8; i++) assert.equal(mismatches(own.bytes.subarray(i * 65_536, (i + 1) * 65_536), 10 + i, i * 65_536), 0, `range ${i}`);
});

test('a read-only attachment is read-only: the writing process faults, the memory is unchanged', async () => {
  using segment = makeSegment(4096);
  using own = segment.attach();
  fill(own.bytes, 2);
  const run = await runPeer(['write-rdonly', segment.id]);
  assert.equal(run.signal, 'SIGSEGV', `${run.line} ${run.stderr}`);
  assert.equal(run.line, 'attached');
  assert.equal(mismatches(own.bytes, 2), 0);
});

test("permits as XPMEM checks them: 0600 lets only the owner's user in, 0644 others read-only", async () => {
  using owner = makeSegment(4096);
  using shared = makeSegment(4096, { permit: { mode: 0o644 } });
  const as = async (segid: string, access: string, uid?: number) => JSON.parse((await runPeer(['get', segid, access], uid)).line) as { ok?: boolean; code?: string };
  assert.deepEqual(await as(owner.id, 'rdonly', NOBODY), { code: 'EACCES' });
  assert.deepEqual(await as(owner.id, 'rdwr'), { ok: true }); // the owner's user
  assert.deepEqual(await as(shared.id, 'rdonly', NOBODY), { ok: true });
  assert.deepEqual(await as(shared.id, 'rdwr', NOBODY), { code: 'EACCES' });
  assert.throws(() => makeSegment(4096, { permit: { mode: 0o1777 } }), RangeError);
});

test('remove() while attached: the peer is told, keeps its data, and no new get succeeds', async () => {
  const segment = makeSegment(4096);
  const own = segment.attach();
  own.bytes.fill(0x5a);
  const watcher = await startPeer(['watch', segment.id]);
  assert.equal(watcher.first, 'attached');
  segment.remove();
  assert.equal(await watcher.next(), 'removed removed 90');
  assert.throws(() => getSegment(segment.id), (e: RdmaError) => e.code === 'ENOENT');
  own.close();
  segment.close();
  segment.close();
});

for (const end of ['killed with SIGKILL', 'exiting normally'] as const) {
  test(`an owner ${end}: attached peers are told and keep the data; its id is refused after`, async () => {
    const owner = await startPeer(['own', '4096', String(0o600), '3']);
    const segid = owner.first;
    const watcher = await startPeer(['watch', segid]);
    assert.equal(watcher.first, 'attached');
    if (end === 'exiting normally') owner.child.stdin!.write('exit\n');
    else owner.child.kill('SIGKILL');
    const [status, signal] = (await once(owner.child, 'exit')) as [number | null, string | null];
    assert.deepEqual([status, signal], end === 'exiting normally' ? [0, null] : [null, 'SIGKILL']);
    assert.equal(await watcher.next(), `removed owner-exited ${patternByte(3, 0)}`);
    assert.throws(() => getSegment(segid), (e: RdmaError) => e.code === 'ESRCH');
  });
}

test('an owner killed while a peer RDMA-writes into its segment: every write completes, the peer keeps the data', async () => {
  const owner = await startPeer(['own', '65536', String(0o600), '3']);
  const writer = await startPeer(['rdma-stream', owner.first, '200']);
  assert.equal(writer.first, 'ready');
  await new Promise((resolve) => setTimeout(resolve, 300));
  owner.child.kill('SIGKILL');
  assert.equal(await writer.next(), 'rdma-stream 200 0 0');
  const [status] = (await once(writer.child, 'exit')) as [number];
  assert.equal(status, 0);
});

test('bad segment ids are RdmaErrors: garbage, an id from elsewhere, one made stale by close()', () => {
  for (const bad of ['', 'garbage', 'rdma-seg:', 'rdma-seg:rdma-node-seg:1:x:', 'rdma-seg:rdma-node-seg:1:x:1a']) {
    assert.throws(() => getSegment(bad), (e: RdmaError) => e.code === 'EINVAL', bad);
  }
  assert.throws(() => getSegment(42 as unknown as string), TypeError);
  assert.throws(() => getSegment('rdma-seg:rdma-node-seg:1:0123456789abcdef:1'), (e: RdmaError) => e.code === 'ESRCH');
  const segment = makeSegment(4096);
  const { id } = segment;
  segment.close();
  assert.throws(() => getSegment(id), (e: RdmaError) => e.code === 'ENOENT');
  assert.throws(() => segment.attach(), TypeError);
});

test('a worker thread and a forked child attach like any process', async () => {
  using segment = makeSegment(8192, { permit: { mode: 0o600 } });
  using own = segment.attach();
  fill(own.bytes, 4);
  const lib = require.resolve('../../lib');
  const worker = new Worker(
    `const { getSegment } = require(${JSON.stringify(lib)}); const { workerData, parentPort } = require('node:worker_threads');
     const view = getSegment(workerData, { access: 'rdwr' }).attach(4096, 4096); view.bytes.fill(0x33); parentPort.postMessage(view.bytes[5]);`,
    { eval: true, workerData: segment.id },
  );
  const [seen] = (await once(worker, 'message')) as [number];
  assert.equal(seen, 0x33);
  assert.ok(own.bytes.subarray(4096).every((b) => b === 0x33));
  const child = fork(peer, ['read', segment.id, '0', '4096', '4'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await once(child, 'exit');
  assert.equal(out.trim(), 'ok');
});

test('RDMA on shared memory: a peer registers the segment and RDMA-writes and reads it; the owner registers it too', async () => {
  const length = 65_536;
  using segment = makeSegment(length);
  using own = segment.attach();
  const run = await runPeer(['rdma', segment.id, String(length), '6']);
  assert.equal(run.line, 'rdma SUCCESS SUCCESS 0', run.stderr);
  assert.equal(mismatches(own.bytes, 6), 0, 'the owner sees what the peer wrote through its own MR');
  // Registered here as well, at the same time as in a peer: both MRs reach the same pages.
  using t = pair();
  const mr = t.pair.pd.registerMemory(own.bytes, Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ);
  const source = t.pair.pd.registerMemory(Buffer.alloc(4096, 0x77));
  t.pair.qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: mr.remote(0, 4096) });
  const [done] = await t.pair.cqs[0].take(1, { timeoutMs: 30_000 });
  assert.equal(done!.statusName, 'SUCCESS');
  const check = await runPeer(['read', segment.id, '4096', String(length - 4096), '6']);
  assert.equal(check.line, 'ok');
  assert.ok(own.bytes.subarray(0, 4096).every((b) => b === 0x77));
  const peerView = spawnSync(process.execPath, ['-e', `
    const { getSegment } = require(${JSON.stringify(require.resolve('../../lib'))});
    console.log(getSegment(${JSON.stringify(segment.id)}).attach(0, 4096).bytes.every((b) => b === 0x77));`], { encoding: 'utf8' });
  assert.equal(peerView.stdout.trim(), 'true');
});

test('a hugetlb segment: 2 MiB pages shared with a peer, attach offsets in whole huge pages', async () => {
  writeFileSync('/proc/sys/vm/nr_hugepages', '8');
  using segment = makeSegment(3 << 20, { hugePages: 'hugetlb' });
  assert.equal(segment.size, 4 << 20, 'rounded up to whole 2 MiB pages');
  using own = segment.attach();
  assert.equal(own.pageSize, 2 << 20);
  fill(own.bytes, 8);
  assert.equal((await runPeer(['read', segment.id, String(2 << 20), String(2 << 20), '8'])).line, 'ok');
  assert.throws(() => segment.attach(4096, 4096), RangeError);
});

test("a peer that got 'rdonly' holds a read-only descriptor (it cannot map the memory writable), 'rdwr' a writable one", async () => {
  using segment = makeSegment(4096, { permit: { mode: 0o644 } });
  assert.equal((await runPeer(['descriptors', segment.id])).line, 'rdonly rdwr');
});

test('makeSegment(buffer) shares the pages of a shareable buffer; other buffers are refused', async () => {
  using buffer = allocate(3 * 4096, { shareable: true });
  fill(buffer.bytes, 9);
  const segment = makeSegment(buffer);
  assert.equal(segment.size, 3 * 4096);
  assert.equal((await runPeer(['read', segment.id, '0', String(3 * 4096), '9'])).line, 'ok');
  assert.equal((await runPeer(['write', segment.id, '4096', '4096', '11'])).line, 'written');
  assert.equal(mismatches(buffer.bytes.subarray(4096, 8192), 11, 4096), 0, "the peer's writes are in the owner's buffer");
  buffer.close(); // the segment keeps the memory
  using view = segment.attach(4096, 4096);
  assert.equal(mismatches(view.bytes, 11, 4096), 0);
  segment.close();
  using plain = allocate(4096);
  assert.throws(() => makeSegment(plain), TypeError);
  assert.throws(() => makeSegment(buffer), TypeError, 'a closed buffer');
  using shareable = allocate(4096, { shareable: true });
  assert.throws(() => makeSegment(shareable, { hugePages: 'hugetlb' }), TypeError);
  assert.throws(() => makeSegment(4096, { channel: 'fifo' as 'socket' }), TypeError);
});

test('a shareable buffer: remap() maps its file again (contents kept), discard() punches a hole every mapping sees', () => {
  using buffer = allocate(2 * 4096, { shareable: true });
  using segment = makeSegment(buffer);
  using view = segment.attach();
  buffer.bytes.fill(0x6b);
  buffer.unmap();
  buffer.remap();
  assert.ok(buffer.bytes.every((b) => b === 0x6b));
  buffer.discard(4096, 4096);
  assert.ok(view.bytes.subarray(0, 4096).every((b) => b === 0x6b));
  assert.ok(view.bytes.subarray(4096).every((b) => b === 0), 'the hole is in the file');
});

test('the registration cache trusts sealed shared memory: an attachment is cached, its unmap invalidates it; read-only ones stay uncached', async () => {
  using segment = makeSegment(65_536);
  using own = segment.attach();
  using t = pair();
  using cache = t.pair.pd.createRegistrationCache({ strategy: 'monitor' });
  const source = t.pair.pd.registerMemory(Buffer.alloc(65_536));
  const writeInto = async (region: { remote(): { addr: bigint; rkey: number; length: number } }, byte: number): Promise<void> => {
    source.bytes.fill(byte);
    t.pair.qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: region.remote() });
    assert.equal((await t.pair.cqs[0].take(1, { timeoutMs: 30_000 }))[0]!.statusName, 'SUCCESS');
  };
  const first = cache.register(own.bytes, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  assert.equal(first.cached, true);
  first.close();
  const again = cache.register(own.bytes, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  assert.equal(cache.stats().hits, 1);
  await writeInto(again, 0x42);
  assert.ok(own.bytes.every((b) => b === 0x42));
  again.close();
  own.unmap(); // an unmap event, as for private memory
  own.remap();
  const invalidated = cache.stats().invalidations;
  assert.ok(invalidated >= 1, `invalidations ${invalidated}`);
  const fresh = cache.register(own.bytes, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  assert.equal(cache.stats().misses, 2);
  await writeInto(fresh, 0x43);
  assert.ok(own.bytes.every((b) => b === 0x43));
  fresh.close();
  using reader = getSegment(segment.id);
  using readOnly = reader.attach();
  const before = cache.stats().uncached;
  cache.register(readOnly.bytes, Access.REMOTE_READ).close();
  assert.equal(cache.stats().uncached, before + 1, 'userfaultfd does not register mappings that can never be written');
});
