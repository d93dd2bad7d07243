/**
 * A peer process for the CMA tests. `publish <size> <seed> <allow|deny>`: fills a Buffer with the seed's
 * pattern, publishes it (letting any process in under Yama scope 1 with `allow`), prints the descriptor,
 * then answers stdin lines: `check <seed>` → "ok" or "bad <count>"; `exit`. `read <descriptor-json>`:
 * reads the published buffer and prints {copied, sum} or {code}.
 */
import { createInterface } from 'node:readline';

import { RdmaError, peerMemory, readFrom, type PeerMemoryDescriptor } from '../../lib';

/** Byte i of the seed's pattern. */
export const patternByte = (seed: number, i: number): number => (i * 31 + seed * 7 + (i >> 8)) & 0xff;

const [mode, ...args] = process.argv.slice(2);
if (mode === 'publish') {
  const [size, seed, allow] = [Number(args[0]), Number(args[1]), args[2] === 'allow'];
  const buffer = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buffer[i] = patternByte(seed, i);
  const published = allow ? peerMemory(buffer) : peerMemory(buffer, { reader: 0 });
  console.log(JSON.stringify(published.descriptor));
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, value] = line.split(' ');
    if (command === 'exit') process.exit(0);
    let bad = 0;
    for (let i = 0; i < size; i++) if (buffer[i] !== patternByte(Number(value), i)) bad++;
    console.log(bad === 0 ? 'ok' : `bad ${bad}`);
  });
} else if (mode === 'read') {
  const descriptor = JSON.parse(args[0]!) as PeerMemoryDescriptor;
  const target = Buffer.alloc(descriptor.length);
  try {
    const copied = readFrom(descriptor.pid, descriptor, target);
    console.log(JSON.stringify({ copied, sum: target.reduce((a, b) => (a + b) % 65_521, 0) }));
  } catch (error) {
    console.log(JSON.stringify({ code: (error as RdmaError).code, message: (error as Error).message }));
  }
}
