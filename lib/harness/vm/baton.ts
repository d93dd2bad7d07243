/**
 * The pair's baton: host 1 waits until host 0 says a tag (over the private link), so that host 1 keeps
 * serving (sshd, servers) until host 0 is done with it. Used by the two-host tests and benchmarks.
 */
import { createConnection, createServer } from 'node:net';

import type { HostRole } from './pair';

const BATON_PORT = 7071;
const RETRY_MS = 60_000;

/** Host 1: resolves when host 0 says `tag` (see tellPeer). */
export function awaitPeer(role: HostRole, tag: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const server = createServer((socket) => {
      socket.setEncoding('utf8');
      let text = '';
      socket.on('data', (chunk: string) => {
        text += chunk;
        if (!text.includes('\n')) return;
        socket.end();
        if (text.trim() !== tag) return;
        server.close();
        resolve();
      });
    });
    server.on('error', reject);
    server.listen(BATON_PORT, role.address);
  });
}

/** Host 0: tells host 1 `tag`, retrying while host 1 is not listening yet. */
export async function tellPeer(role: HostRole, tag: string): Promise<void> {
  const deadline = Date.now() + RETRY_MS;
  for (;;) {
    const sent = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: role.peer, port: BATON_PORT }, () => socket.end(`${tag}\n`, () => resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (sent || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 300));
  }
}
