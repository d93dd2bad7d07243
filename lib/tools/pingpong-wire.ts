/**
 * The out-of-band exchange of rdma-core's ibv_*_pingpong examples: over TCP, each side sends
 * "LLLL:QQQQQQ:PPPPPP:GGGG...G" (hex LID, QPN, PSN and the GID as 32 hex digits) NUL-terminated in a
 * fixed 52-byte message per QP, the client writes "done" at the end. Wire-compatible with the C programs.
 */
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';

export const DEST_BYTES = 52; // sizeof "0000:000000:000000:00000000000000000000000000000000"
const DONE = Buffer.from('done\0', 'latin1');

export interface PingpongDest {
  lid: number;
  qpn: number;
  psn: number;
  gid: Uint8Array;
}

export function formatDest(dest: PingpongDest): Buffer {
  const hex = (value: number, width: number): string => value.toString(16).padStart(width, '0');
  const text = `${hex(dest.lid, 4)}:${hex(dest.qpn, 6)}:${hex(dest.psn, 6)}:${Buffer.from(dest.gid).toString('hex')}`;
  const out = Buffer.alloc(DEST_BYTES);
  out.write(text, 'latin1');
  return out;
}

export function parseDest(message: Uint8Array): PingpongDest {
  const text = Buffer.from(message).toString('latin1').replace(/\0.*$/s, '');
  const match = /^([0-9a-f]+):([0-9a-f]+):([0-9a-f]+):([0-9a-f]{32})$/i.exec(text);
  if (!match) throw new Error(`malformed pingpong address message: ${JSON.stringify(text)}`);
  return { lid: parseInt(match[1]!, 16), qpn: parseInt(match[2]!, 16), psn: parseInt(match[3]!, 16), gid: Buffer.from(match[4]!, 'hex') };
}

/** Reads exactly `size` bytes (or fewer if the peer closes first). */
async function readExactly(socket: Socket, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  while (have < size) {
    const chunk = socket.read(Math.min(size - have, socket.readableLength || size - have)) as Buffer | null;
    if (chunk) {
      chunks.push(chunk);
      have += chunk.length;
      continue;
    }
    if (socket.readableEnded || socket.destroyed) break;
    await Promise.race([once(socket, 'readable'), once(socket, 'end'), once(socket, 'close')]);
  }
  return Buffer.concat(chunks);
}

/** Client side: send ours, read theirs, say done. */
export async function exchangeAsClient(host: string, port: number, mine: PingpongDest[]): Promise<PingpongDest[]> {
  const socket = createConnection({ host, port });
  await once(socket, 'connect');
  try {
    socket.write(Buffer.concat(mine.map(formatDest)));
    const reply = await readExactly(socket, mine.length * DEST_BYTES);
    if (reply.length !== mine.length * DEST_BYTES) throw new Error("couldn't read remote address");
    socket.write(DONE);
    return Array.from({ length: mine.length }, (_, i) => parseDest(reply.subarray(i * DEST_BYTES, (i + 1) * DEST_BYTES)));
  } finally {
    socket.end();
  }
}

/**
 * Server side: accept one client, read its addresses, let `connect` bring the QPs up (the C server does
 * that before it answers), send ours, wait for "done".
 */
export async function exchangeAsServer(port: number, mine: PingpongDest[], connect: (theirs: PingpongDest[]) => void): Promise<PingpongDest[]> {
  const server = createServer({ pauseOnConnect: true });
  server.listen(port);
  await once(server, 'listening');
  const [socket] = (await once(server, 'connection')) as [Socket];
  server.close();
  socket.resume();
  socket.pause();
  try {
    const request = await readExactly(socket, mine.length * DEST_BYTES);
    if (request.length !== mine.length * DEST_BYTES) throw new Error("couldn't read remote address");
    const theirs = Array.from({ length: mine.length }, (_, i) => parseDest(request.subarray(i * DEST_BYTES, (i + 1) * DEST_BYTES)));
    connect(theirs);
    socket.write(Buffer.concat(mine.map(formatDest)));
    await readExactly(socket, DONE.length);
    return theirs;
  } finally {
    socket.end();
  }
}
