/**
 * Shared by the two-host tests. Both VMs of a pair run the same files in the same order; each test runs
 * its host's side: host 0 the server (started first, waiting for its one client), host 1 the client, which
 * retries for a bounded time while the server is not up yet. Each side checks what it can see itself.
 */
import { createHash } from 'node:crypto';

import { awaitPeer as awaitPairPeer, tellPeer as tellPairPeer } from '../../lib/harness/vm/baton';
import { connect, type Endpoint, type EndpointOptions } from '../../lib';
import { hostRole } from '../../lib/harness/vm/pair';
import { start, type Run } from '../support/processes';

export const role = hostRole();

/** How long a client keeps retrying a server that is not up yet. */
export const CONNECT_DEADLINE_MS = 60_000;

/** Runs `server` on host 0 and `client` on host 1. */
export function side(server: () => Promise<void>, client: () => Promise<void>): Promise<void> {
  return role.server ? server() : client();
}

/** Host 1: an endpoint to host 0's `port`, retrying (no listener yet, its device still coming up) for a while. */
export async function connectRetrying(port: number, options: EndpointOptions = {}): Promise<Endpoint> {
  const deadline = Date.now() + CONNECT_DEADLINE_MS;
  for (;;) {
    try {
      return await connect(role.peer, port, options);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`cannot connect to ${role.peer}:${port}: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

/** Runs `command` to its end, again while its output says the server is not listening yet. */
export async function runRetrying(command: string[], timeoutMs = 60_000): Promise<Run> {
  const deadline = Date.now() + CONNECT_DEADLINE_MS;
  for (;;) {
    const run = await start(command, timeoutMs).done;
    const refused = run.status !== 0 && /Couldn't connect|ECONNREFUSED|REJECTED/.test(run.output);
    if (!refused || Date.now() > deadline) return run;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** `length` bytes that both hosts compute alike from `tag` (SHA-256 in counter mode). */
export function pattern(tag: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let block = 0; block * 32 < length; block++) {
    createHash('sha256').update(`${tag}:${block}`).digest().copy(out, block * 32);
  }
  return out;
}

/** perftest prints GIDs byte by byte in decimal: 10.77.0.1 → ...:255:255:10:77:00:01. */
export const perftestGid = (address: string): string =>
  `00:00:00:00:00:00:00:00:00:00:255:255:${address.split('.').map((b) => b.padStart(2, '0')).join(':')}`;

/** Host 1: resolves when host 0 says `tag` (see tellPeer), so that host 1 keeps serving until host 0 is done. */
export const awaitPeer = (tag: string): Promise<void> => awaitPairPeer(role, tag);

/** Host 0: tells host 1 `tag`, retrying while host 1 is not listening yet. */
export const tellPeer = (tag: string): Promise<void> => tellPairPeer(role, tag);
