const { allocate, openDevice, createLoopbackPair, Access } = require('/work/wt4/dist/lib');
const { rdmaWrite, differingBytes } = require('/work/wt4/dist/test/device/memory');
const { randomBytes } = require('crypto');
const [size, offset, touch] = process.argv.slice(2).map(Number);
const ctx = openDevice(); const loop = createLoopbackPair(ctx);
const ra = Access.LOCAL_WRITE|Access.REMOTE_WRITE|Access.REMOTE_READ;
const data = loop.pd.registerMemory(randomBytes(size));
const b = allocate(size + offset + 8192);
if (touch) b.bytes.fill(0);
const mr = loop.pd.registerMemory(b.bytes, ra | Access.ON_DEMAND);
const st = rdmaWrite(loop, data, mr.remote(offset, size));
const got = b.bytes.subarray(offset, offset + size);
let first = -1; for (let i = 0; i < size; i++) if (got[i] !== data.bytes[i]) { first = i; break; }
console.log(`size ${size} offset ${offset} touch ${touch}: ${st} differ ${differingBytes(got, data.bytes)} first ${first} outside ${b.bytes.subarray(0, offset).some(x => x) || b.bytes.subarray(offset + size).some(x => x)}`);
ctx.close();
