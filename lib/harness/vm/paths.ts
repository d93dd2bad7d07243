/** Where the VM harness keeps downloaded kernels and built initramfs images. */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RDMA_NODE_CACHE) return join(env.RDMA_NODE_CACHE, 'vm');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rdma-node', 'vm');
}

export type Log = (line: string) => void;
export const stderrLog: Log = (line) => process.stderr.write(`[vm] ${line}\n`);

/** A file's text, or undefined when it cannot be read (absent). */
export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
