import assert from 'node:assert/strict';
import { once } from 'node:events';
import { afterEach, test } from 'node:test';
import { Worker } from 'node:worker_threads';

import { getSegment, makeSegment, type RdmaError } from '../../lib';
import { fill, killPeers, mismatches, patternByte, runPeer, startPeer } from '../support/segment-peer';

afterEach(killPeers);

// Segments on the pidfd channel: peers take the owner's memfd with pidfd_getfd. As root in the VM, with
// owner and peers as nobody where the peer's own permit check is what is tested.
const NOBODY = 65_534;

const refusedWith = (code: string) => (e: RdmaError) => e.code === code;

test('pidfd channel: peers read and write every byte, a read-only peer holds a read-only descriptor, a worker attaches', async () => {
  using segment = makeSegment(8192, { channel: 'pidfd' });
  assert.match(segment.id, /^rdma-seg:pidfd:\d+:\d+:\d+:\d+$/);
  using own = segment.attach();
  fill(own.bytes, 5);
  assert.equal((await runPeer(['read', segment.id, '0', '4096', '5'])).line, 'ok');
  assert.equal((await runPeer(['write', segment.id, '4096', '4096', '7'])).line, 'written');
  assert.equal(mismatches(own.bytes.subarray(4096), 7, 4096), 0);
  assert.equal((await runPeer(['descriptors', segment.id])).line, 'rdonly rdwr');
  const worker = new Worker(
    `const { getSegment } = require(${JSON.stringify(require.resolve('../../lib'))}); const { workerData, parentPort } = require('node:worker_threads');
     const view = getSegment(workerData).attach(0, 4096); parentPort.postMessage(view.bytes[1]);`,
    { eval: true, workerData: segment.id },
  );
  assert.equal(((await once(worker, 'message')) as [number])[0], patternByte(5, 1));
});

test("pidfd channel: the kernel lets in only who may ptrace the owner; the permit is the peer's check", async () => {
  using rootOwned = makeSegment(4096, { channel: 'pidfd', permit: { mode: 0o644 } });
  const get = async (segid: string, access: string, uid?: number) => JSON.parse((await runPeer(['get', segid, access], uid)).line) as { ok?: boolean; code?: string };
  assert.deepEqual(await get(rootOwned.id, 'rdonly', NOBODY), { code: 'EACCES' }, 'nobody may not ptrace root, whatever the mode');
  const owner = await startPeer(['own', '4096', String(0o400), '1', 'pidfd'], NOBODY);
  assert.deepEqual(await get(owner.first, 'rdonly', NOBODY), { ok: true });
  assert.deepEqual(await get(owner.first, 'rdwr', NOBODY), { code: 'EACCES' }, 'mode 0400: read-only even for its user');
  owner.child.stdin!.end('exit\n');
  await once(owner.child, 'exit');
});

test('pidfd channel: remove() and the owner killed are told to attached peers; removed, closed and dead ids are refused', async () => {
  const segment = makeSegment(4096, { channel: 'pidfd' });
  using own = segment.attach();
  own.bytes.fill(0x5a);
  const watcher = await startPeer(['watch', segment.id]);
  assert.equal(watcher.first, 'attached');
  segment.remove();
  assert.equal(await watcher.next(), 'removed removed 90');
  assert.throws(() => getSegment(segment.id), refusedWith('ENOENT'));
  const { id } = segment;
  segment.close();
  assert.throws(() => getSegment(id), refusedWith('ENOENT'), 'closed: the descriptors are gone or something else');
  const killed = await startPeer(['own', '4096', String(0o600), '3', 'pidfd']);
  const orphan = await startPeer(['watch', killed.first]);
  assert.equal(orphan.first, 'attached');
  killed.child.kill('SIGKILL');
  assert.equal(await orphan.next(), `removed owner-exited ${patternByte(3, 0)}`);
  assert.throws(() => getSegment(killed.first), refusedWith('ESRCH'));
  for (const bad of ['rdma-seg:pidfd:', 'rdma-seg:pidfd:1:2:3', 'rdma-seg:pidfd:0:1:2:3', 'rdma-seg:pidfd:1:2:3:4:5', 'rdma-seg:pidfd:1:x:3:4']) {
    assert.throws(() => getSegment(bad), refusedWith('EINVAL'), bad);
  }
});
