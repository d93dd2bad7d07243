const { allocate, openDevice, createLoopbackPair, Access, WrOpcode } = require('/work/wt4/dist/lib');
const { rdmaWrites, differingBytes } = require('/work/wt4/dist/test/device/memory');
const { randomBytes } = require('crypto');
const ctx = openDevice(); const loop = createLoopbackPair(ctx);
const ra = Access.LOCAL_WRITE|Access.REMOTE_WRITE|Access.REMOTE_READ;
const data = loop.pd.registerMemory(randomBytes(65536));
const b = allocate(65536);
const mr = loop.pd.registerMemory(b.bytes, ra | Access.ON_DEMAND);
for (const adv of ['prefetch-write', 'prefetch', 'prefetch-no-fault']) {
  try { mr.advise(adv, { flush: adv === 'prefetch-write' }); console.log('advise', adv, 'ok'); } catch (e) { console.log('advise', adv, e.code, e.verb, e.message); }
}
const writes = []; for (let p = 0; p < 16; p++) writes.push({ source: data, offset: p * 4096, length: 1024, target: mr.remote(p * 4096, 1024) });
console.log(rdmaWrites(loop, writes).join(','));
let bad = 0; for (let p = 0; p < 16; p++) bad += differingBytes(b.bytes.subarray(p*4096, p*4096+1024), data.bytes.subarray(p*4096, p*4096+1024));
console.log('page-start 1024 writes differ', bad);
b.remap();
console.log(rdmaWrites(loop, writes).join(','));
bad = 0; for (let p = 0; p < 16; p++) bad += differingBytes(b.bytes.subarray(p*4096, p*4096+1024), data.bytes.subarray(p*4096, p*4096+1024));
console.log('after remap differ', bad);
// pinned advise
const pinned = loop.pd.registerMemory(b.bytes, ra);
try { pinned.advise('prefetch'); console.log('pinned advise ok'); } catch (e) { console.log('pinned advise', e.code); }
ctx.close();
