/** The job a VM runs: a shell script with the command, its directory and environment, safely quoted. */

/** Where the guest sees its job directory (the script in, the status out; guest-init.ts mounts it). */
export const GUEST_JOB_DIR = '/run/rdma-node-job';

/** Quotes one word for POSIX sh. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface JobSpec {
  command: string[];
  cwd: string;
  env: Record<string, string>;
}

export function jobScript({ command, cwd, env }: JobSpec): string {
  for (const name of Object.keys(env)) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid environment variable name: ${name}`);
  const exports = Object.entries(env).map(([name, value]) => `export ${name}=${shellQuote(value)}`);
  return ['#!/bin/sh', ...exports, `cd ${shellQuote(cwd)} || exit 125`, `exec ${command.map(shellQuote).join(' ')}`, ''].join('\n');
}
