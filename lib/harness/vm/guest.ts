/** One guest of a run (the single VM, or host0/host1 of a pair): its job directory, console and outcome. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Kernel } from './kernel';
import type { PairHost } from './pair';
import { cacheRoot, type Log } from './paths';
import type { BootResult } from './qemu';

/**
 * Thrown when a kernel could not run the command at all: worth trying the next kernel. `panicked`: the
 * kernel panicked while booting, which sid's does now and then under TCG (see runInVm): worth booting again.
 */
export class BootFailure extends Error {
  constructor(message: string, readonly panicked = false) {
    super(message);
  }
}
/** A VM of a pair stopped because the other one failed first. */
export class PeerStopped extends Error {}

/** How long the other VM of a pair may go on after one failed (its server would wait for nobody). */
export const PEER_GRACE_MS = 15_000;

export interface Guest {
  /** '' for a single VM, host0 and host1 in a pair. */
  label: string;
  host?: PairHost;
  jobDir: string;
  log: Log;
  output: (line: string) => void;
}

export function guestFor(host: PairHost | undefined, log: Log, output: (line: string) => void): Guest {
  const label = host ? `host${host.index}` : '';
  return {
    label,
    host,
    // The job directory is the guest's third share: the script to run in, the exit status out.
    jobDir: mkdtempSync(join(tmpdir(), 'rdma-node-vm-')),
    log: host ? (line) => log(`${label}: ${line}`) : log,
    output: host ? (line) => output(`[${label}] ${line}`) : output,
  };
}

/** The exit status of one guest's command, or why there is none. */
export function statusOf(guest: Guest, kernel: Kernel, result: BootResult, timeoutMs: number, started: number, signal?: AbortSignal): number {
  const named = (message: string): string => (guest.label ? `${guest.label}: ${message}` : message);
  if (signal?.aborted) throw new Error('interrupted');
  if (result.aborted) throw new PeerStopped(named('stopped because the other VM failed'));
  if (result.timedOut) throw new Error(named(`the VM run exceeded ${Math.round(timeoutMs / 1000)} s and was stopped`));
  if (!result.ready) {
    const why = result.failure ?? `the guest stopped; its last console lines: ${result.tail.join(' | ') || '(none)'}`;
    // The console of a failed boot is kept: a panic's stack says what went wrong.
    const dir = join(cacheRoot(), 'boot-failures');
    mkdirSync(dir, { recursive: true });
    const log = join(dir, `${kernel.version}-${new Date().toISOString().replace(/[:.]/g, '-')}${guest.label ? `-${guest.label}` : ''}.log`);
    writeFileSync(log, `${result.bootLog.join('\n')}\n`);
    throw new BootFailure(named(`Linux ${kernel.version} did not get as far as running the command: ${why} (console in ${log})`), result.failure?.startsWith('kernel panic') ?? false);
  }
  // The status file survives a console that garbled the marker; the marker covers a failed write.
  const statusFile = join(guest.jobDir, 'status');
  const status = existsSync(statusFile) ? Number(readFileSync(statusFile, 'utf8').trim()) : result.status;
  if (status === undefined || !Number.isInteger(status)) {
    throw new Error(named(`the command started in the VM but no exit status came back (${result.failure ?? 'did the guest crash?'})`));
  }
  guest.log(`VM finished in ${((Date.now() - started) / 1000).toFixed(1)} s, command exit status ${status}`);
  return status;
}

/**
 * One status for the run: an error if a VM could not run the command (a BootFailure only if no VM failed
 * for a reason the next kernel would share), else the first nonzero status.
 */
export function combine(outcomes: PromiseSettledResult<number>[]): number {
  const errors = outcomes.flatMap((o) => (o.status === 'rejected' && !(o.reason instanceof PeerStopped) ? [o.reason as Error] : []));
  if (errors.length > 0) throw errors.find((e) => !(e instanceof BootFailure)) ?? errors[0];
  const statuses = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  return statuses.find((s) => s !== 0) ?? (statuses.length < outcomes.length ? 1 : 0);
}
