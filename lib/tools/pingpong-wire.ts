/**
 * The out-of-band exchange of rdma-core's ibv_*_pingpong examples: over TCP, each side sends
 * "LLLL:QQQQQQ:PPPPPP:GGGG...G" (hex LID, QPN, PSN and the GID as 32 hex digits) NUL-terminated in a
 * fixed 52-byte message per QP, the client writes "done" at the end. Wire-compatible with the C programs.
 */
import { on, once } from 'node:events';
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

/**
 * ibv_xsrq_pingpong's exchange: one 66-byte message per client, "%04x:%06x:%06x:%06x:%06x:%32s" (LID,
 * receive (XRC target) QPN, send (initiator) QPN, PSN, SRQ number, wire GID) NUL-terminated; the client
 * sends first, the server reads, answers and connects, client by client. After the run the client sends
 * "END\0" and reads it back; the server reads it from every client, then sends it to every one.
 */
export const XRC_DEST_BYTES = 66;
const XRC_END = Buffer.from('END\0', 'latin1');

export interface XrcPingpongDest {
  lid: number;
  recvQpn: number;
  sendQpn: number;
  psn: number;
  srqn: number;
  gid: Uint8Array;
}

export function formatXrcDest(dest: XrcPingpongDest): Buffer {
  const fields: [number, number, number][] = [[dest.lid, 4, 0xffff], [dest.recvQpn, 6, 0xffffff], [dest.sendQpn, 6, 0xffffff], [dest.psn, 6, 0xffffff], [dest.srqn, 6, 0xffffff]];
  for (const [value, , max] of fields) {
    if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${value} does not fit the XRC address message`);
  }
  if (dest.gid.length !== 16) throw new RangeError('a GID is 16 bytes');
  const text = [...fields.map(([value, width]) => value.toString(16).padStart(width, '0')), Buffer.from(dest.gid).toString('hex')].join(':');
  const out = Buffer.alloc(XRC_DEST_BYTES);
  out.write(text, 'latin1');
  return out;
}

export function parseXrcDest(message: Uint8Array): XrcPingpongDest {
  const text = Buffer.from(message).toString('latin1').replace(/\0.*$/s, '');
  const match = /^([0-9a-f]+):([0-9a-f]+):([0-9a-f]+):([0-9a-f]+):([0-9a-f]+):([0-9a-f]{32})$/i.exec(text);
  if (!match) throw new Error(`malformed XRC pingpong address message: ${JSON.stringify(text)}`);
  const [lid, recvQpn, sendQpn, psn, srqn] = match.slice(1, 6).map((hex) => parseInt(hex, 16)) as [number, number, number, number, number];
  return { lid, recvQpn, sendQpn, psn, srqn, gid: Buffer.from(match[6]!, 'hex') };
}

/** Writes one XRC address message. */
export function sendXrcDest(socket: Socket, dest: XrcPingpongDest): void {
  socket.write(formatXrcDest(dest));
}

/** Reads one XRC address message; `index` names the client in the error, as the C program does. */
export async function readXrcDest(socket: Socket, index: number): Promise<XrcPingpongDest> {
  const message = await readExactly(socket, XRC_DEST_BYTES);
  if (message.length !== XRC_DEST_BYTES) throw new Error(`${message.length}/${XRC_DEST_BYTES}: Couldn't read remote address [${index}]`);
  return parseXrcDest(message);
}

/** The client's connection to the server (kept open for the END handshake). */
export async function connectXrcServer(host: string, port: number): Promise<Socket> {
  const socket = createConnection({ host, port });
  // A later error (the peer gone) ends the socket, and the next read says what was missing.
  const connected = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.on('error', () => resolve(false));
  });
  if (!connected) {
    socket.destroy();
    throw new Error(`Couldn't connect to ${host}:${port}`);
  }
  socket.pause();
  return socket;
}

/**
 * The server: listens (backlog `count`, as the C listen()), then accepts `count` clients one after the
 * other, each handed to `serve` before the next is taken; the sockets stay open for the END handshake.
 */
export async function acceptXrcClients(port: number, count: number, serve: (socket: Socket, index: number) => Promise<void>): Promise<Socket[]> {
  const server = createServer({ pauseOnConnect: true });
  server.listen({ port, backlog: count });
  await once(server, 'listening');
  const sockets: Socket[] = [];
  try {
    const connections = on(server, 'connection');
    while (sockets.length < count) {
      const { value } = (await connections.next()) as { value: [Socket] };
      const [socket] = value;
      sockets.push(socket);
      socket.on('error', () => {}); // the peer gone: the next read comes up short and says so
      socket.resume();
      socket.pause();
      await serve(socket, sockets.length - 1);
    }
    await connections.return?.();
  } finally {
    server.close();
  }
  return sockets;
}

async function readXrcEnd(socket: Socket): Promise<void> {
  const message = await readExactly(socket, XRC_END.length);
  if (message.length !== XRC_END.length) throw new Error(`${message.length}/${XRC_END.length}: Couldn't read remote termination ack`);
  if (!message.equals(XRC_END)) throw new Error('Invalid termination ack was accepted');
}

/** The END handshake: the client sends then reads; the server reads from every client, then sends to every one. Closes the sockets. */
export async function xrcTermination(sockets: Socket[], role: 'client' | 'server'): Promise<void> {
  try {
    if (role === 'client') sockets.forEach((socket) => socket.write(XRC_END));
    for (const socket of sockets) await readXrcEnd(socket);
    if (role === 'server') sockets.forEach((socket) => socket.write(XRC_END));
  } finally {
    for (const socket of sockets) socket.end();
  }
}
