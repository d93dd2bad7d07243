const { allocate, openDevice, createLoopbackPair, Access, WrOpcode } = require('/work/wt4/dist/lib');
const ctx = openDevice(); const loop = createLoopbackPair(ctx);
const ra = Access.LOCAL_WRITE|Access.REMOTE_WRITE|Access.REMOTE_READ;
const src = loop.pd.registerMemory(Buffer.alloc(65536));
const dst = loop.pd.registerMemory(Buffer.alloc(65536), ra);
async function main() {
  for (const len of [4096, 65536]) {
    const t0 = process.hrtime.bigint(); const n = 300;
    for (let i = 0; i < n; i++) {
      loop.qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: src, length: len }], remote: dst.remote(0, len) });
      const [c] = await loop.cqs[0].take(1);
    }
    console.log('await take', len, (Number(process.hrtime.bigint() - t0) / n / 1000).toFixed(1), 'us');
  }
  // poll with Atomics.wait yields
  const sab = new Int32Array(new SharedArrayBuffer(4));
  const t0 = process.hrtime.bigint(); const n = 300;
  for (let i = 0; i < n; i++) {
    loop.qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: src, length: 4096 }], remote: dst.remote(0, 4096) });
    while (loop.cqs[0].poll().count === 0) Atomics.wait(sab, 0, 0, 0.05);
  }
  console.log('poll+Atomics.wait 4096', (Number(process.hrtime.bigint() - t0) / n / 1000).toFixed(1), 'us');
  ctx.close();
}
main();
