/**
 * Fetching Debian kernel packages with apt, without touching the system's apt state: a private list and
 * cache directory per suite, and the mirror the system already uses (no mirror is named in the code).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { readIfExists } from './paths';

const run = promisify(execFile);

const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';

/**
 * The Debian mirror of this system: the first `URIs:` of a deb822 source that serves a plain suite (not
 * -security), or the first `deb` line of a one-line sources.list.
 */
export function parseMirror(deb822: string | undefined, oneLine: string | undefined): string | undefined {
  for (const stanza of (deb822 ?? '').split(/\n\s*\n/)) {
    const uris = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
    const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1] ?? '';
    if (uris && !/security/.test(uris) && suites.split(/\s+/).some((s) => s && !s.includes('-'))) return uris;
  }
  for (const line of (oneLine ?? '').split('\n')) {
    const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
    if (match && !match[2]!.includes('-')) return match[1];
  }
  return undefined;
}

export function systemMirror(): string {
  const mirror = parseMirror(readIfExists('/etc/apt/sources.list.d/debian.sources'), readIfExists('/etc/apt/sources.list'));
  if (!mirror) throw new Error('no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list');
  return mirror;
}

const stampPath = (dir: string): string => join(dir, 'updated');

/** Whether the private apt in `dir` tried to update its lists less than `ms` ago. */
export function updateTriedWithin(dir: string, ms: number): boolean {
  try {
    return Date.now() - statSync(stampPath(dir)).mtimeMs < ms;
  } catch {
    return false;
  }
}

/** An apt with its own state for one suite, under `dir`. */
export class PrivateApt {
  readonly #options: string[];
  readonly #stamp: string;

  constructor(dir: string, suite: string, mirror: string) {
    for (const sub of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(dir, sub), { recursive: true });
    const sources = join(dir, 'sources.list');
    writeFileSync(sources, `deb [signed-by=${keyring}] ${mirror} ${suite} main\n`);
    this.#stamp = stampPath(dir);
    this.#options = [
      '-o', `Dir::Etc::sourcelist=${sources}`, '-o', 'Dir::Etc::sourceparts=-',
      '-o', `Dir::State::Lists=${join(dir, 'lists')}`, '-o', `Dir::Cache=${join(dir, 'cache')}`,
      // The _apt sandbox user cannot write into a user's cache directory.
      '-o', 'APT::Sandbox::User=root',
      // Fail within a minute rather than apt's default two when the network is unreachable.
      '-o', 'Acquire::http::Timeout=30', '-o', 'Acquire::Retries=1',
    ];
  }

  /**
   * Refreshes the package lists (apt's own lock makes a concurrent update fail, not corrupt them). The
   * attempt is stamped even when it fails, so an offline host is not made to wait for it on every run.
   */
  async update(): Promise<void> {
    try {
      // --error-on=any: by default a failed fetch is only a warning and stale (or no) lists look fine.
      await run('apt-get', [...this.#options, '-qq', '--error-on=any', 'update'], { maxBuffer: 1 << 24 });
    } finally {
      writeFileSync(this.#stamp, `${new Date().toISOString()}\n`);
    }
  }

  /** The control stanzas of `packages`, by package name. */
  async show(packages: string[]): Promise<Map<string, string>> {
    const { stdout } = await run('apt-cache', [...this.#options, 'show', '--no-all-versions', ...packages], { maxBuffer: 1 << 24 });
    return parseStanzas(stdout);
  }

  /** Downloads the .deb files of `packages` into `into`. */
  async download(packages: string[], into: string): Promise<void> {
    await run('apt-get', [...this.#options, '-qq', 'download', ...packages], { cwd: into, maxBuffer: 1 << 24 });
  }
}

/** apt-cache show's output → package name → its stanza. */
export function parseStanzas(text: string): Map<string, string> {
  const stanzas = new Map<string, string>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const name = /^Package:\s*(\S+)/m.exec(stanza)?.[1];
    if (name) stanzas.set(name, stanza);
  }
  return stanzas;
}

export function parseDepends(control: string): string[] {
  const line = /^Depends:\s*(.+)$/m.exec(control)?.[1] ?? '';
  return line.split(',').map((d) => d.trim().split(/\s|\|/)[0]!).filter(Boolean);
}

export function parseSize(control: string): number {
  return Number(/^Size:\s*(\d+)/m.exec(control)?.[1] ?? 0);
}
