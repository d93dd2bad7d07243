const { allocate, openDevice, createLoopbackPair, Access } = require('/work/wt4/dist/lib');
const { rdmaWrite, differingBytes } = require('/work/wt4/dist/test/device/memory');
const { randomBytes } = require('crypto');
const ctx = openDevice(); const loop = createLoopbackPair(ctx);
const ra = Access.LOCAL_WRITE|Access.REMOTE_WRITE|Access.REMOTE_READ;
const data = loop.pd.registerMemory(randomBytes(65536));
function tryit(name, buf, touch) {
  if (touch) buf.fill(0);
  const mr = loop.pd.registerMemory(buf, ra | Access.ON_DEMAND);
  const st = rdmaWrite(loop, data, mr.remote());
  console.log(name, st, 'differ', differingBytes(buf, data.bytes));
  // second write
  data.bytes[0] ^= 1;
  const st2 = rdmaWrite(loop, data, mr.remote());
  console.log(name, 'again', st2, 'differ', differingBytes(buf, data.bytes));
  mr.close();
}
tryit('node buffer touched', Buffer.alloc(65536), true);
tryit('node buffer untouched allocUnsafeSlow', Buffer.allocUnsafeSlow(65536), false);
const b = allocate(65536); tryit('mapped untouched', b.bytes, false);
const c = allocate(65536); tryit('mapped touched', c.bytes, true);
for (const size of [4096, 8192]) {
  const d = allocate(size); const mr = loop.pd.registerMemory(d.bytes, ra|Access.ON_DEMAND);
  console.log('size', size, rdmaWrite(loop, data, mr.remote()), differingBytes(d.bytes, data.bytes.subarray(0, size)));
}
ctx.close();
