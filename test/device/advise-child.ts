/**
 * Run by odp.test.ts inside a chroot of sid (RDMA_NODE_SUITE_ROOT), where the addon loads sid's rdma-core:
 * ibv_advise_mr on an ODP region of fresh pages, then an RDMA write into it. Prints one JSON line.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

import { Access, WcStatus, WrOpcode, allocate, createLoopbackPair, openDevice } from '../../lib';

const PAGE = 4096;
const PAGES = 64;

/** How many of the pages at `address` are present in this process's page tables (/proc/self/pagemap bit 63). */
function presentPages(address: bigint, pages: number): number {
  const entries = Buffer.alloc(8 * pages);
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    readSync(fd, entries, 0, entries.length, Number(address / BigInt(PAGE)) * 8);
  } finally {
    closeSync(fd);
  }
  let present = 0;
  for (let i = 0; i < pages; i++) present += Number(entries.readBigUInt64LE(8 * i) >> 63n);
  return present;
}

const libibverbs = readFileSync('/proc/self/maps', 'utf8').split('\n').map((line) => line.split(/\s+/)[5]).find((path) => path?.includes('libibverbs.so'));
using context = openDevice(process.env.RDMA_NODE_DEVICE!);
const loop = createLoopbackPair(context);
const buffer = allocate(PAGES * PAGE);
const region = loop.pd.registerMemory(buffer.bytes, Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.ON_DEMAND);
const before = presentPages(buffer.address, PAGES);
region.advise('prefetch-write', { flush: true });
const afterPrefetch = presentPages(buffer.address, PAGES);
// The prefetched pages are the ones RDMA writes reach (in place on the patched module).
const data = loop.pd.registerMemory(Buffer.alloc(3 * PAGE, 0xa5));
loop.qps[0].postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: data }], remote: region.remote(1000, 3 * PAGE) });
let batch = loop.cqs[0].poll();
for (const deadline = Date.now() + 10_000; batch.count === 0 && Date.now() < deadline; ) batch = loop.cqs[0].poll();
const status = batch.count === 0 ? 'no completion' : WcStatus[batch.status(0)];
const misplaced = buffer.bytes.reduce((count, byte, at) => count + Number(byte !== (at >= 1000 && at < 1000 + 3 * PAGE ? 0xa5 : 0)), 0);
console.log(JSON.stringify({ libibverbs, pages: PAGES, before, afterPrefetch, status, misplaced }));
