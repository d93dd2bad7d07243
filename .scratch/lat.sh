ib_write_lat -d rxe0 -x 1 -s 4096 -n 300 >/tmp/srv.log 2>&1 &
sleep 1
ib_write_lat -d rxe0 -x 1 -s 4096 -n 300 10.0.2.15 2>&1 | tail -4
wait
cat > /tmp/p3.js <<'JS'
const { openDevice, createLoopbackPair, Access, WrOpcode } = require('/work/wt4/dist/lib');
const ctx = openDevice(); const loop = createLoopbackPair(ctx);
const src = loop.pd.registerMemory(Buffer.alloc(65536));
const dst = loop.pd.registerMemory(Buffer.alloc(65536), Access.LOCAL_WRITE|Access.REMOTE_WRITE);
for (const n of [10, 300]) {
const t0 = process.hrtime.bigint(); let spins = 0;
for (let i = 0; i < n; i++) {
  loop.qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: src, length: 4096 }], remote: dst.remote(0, 4096) });
  while (loop.cqs[0].poll().count === 0) spins++;
}
console.log('busy poll 4096', n, (Number(process.hrtime.bigint() - t0) / n / 1000).toFixed(1), 'us', spins / n, 'spins');
}
ctx.close();
JS
node /tmp/p3.js
