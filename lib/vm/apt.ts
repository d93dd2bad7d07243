/**
 * Fetching Debian kernel packages with apt, without touching the system's apt state: a private list and
 * cache directory per suite, and the mirror the system already uses (no mirror is named in the code).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

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

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function systemMirror(): string {
  const mirror = parseMirror(readIfExists('/etc/apt/sources.list.d/debian.sources'), readIfExists('/etc/apt/sources.list'));
  if (!mirror) throw new Error('no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list');
  return mirror;
}

/** An apt with its own state for one suite, under `dir`. */
export class PrivateApt {
  readonly #options: string[];

  constructor(readonly dir: string, readonly suite: string, mirror: string) {
    for (const sub of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(dir, sub), { recursive: true });
    const sources = join(dir, 'sources.list');
    writeFileSync(sources, `deb [signed-by=${keyring}] ${mirror} ${suite} main\n`);
    this.#options = [
      '-o', `Dir::Etc::sourcelist=${sources}`, '-o', 'Dir::Etc::sourceparts=-',
      '-o', `Dir::State::Lists=${join(dir, 'lists')}`, '-o', `Dir::Cache=${join(dir, 'cache')}`,
      '-o', 'Debug::NoLocking=1', '-o', 'APT::Sandbox::User=root',
    ];
  }

  async update(): Promise<void> {
    await run('apt-get', [...this.#options, '-qq', 'update'], { maxBuffer: 1 << 24 });
  }

  /** The `Depends:` package names of `pkg` (alternatives and version constraints dropped). */
  async depends(pkg: string): Promise<string[]> {
    const { stdout } = await run('apt-cache', [...this.#options, 'show', '--no-all-versions', pkg], { maxBuffer: 1 << 24 });
    return parseDepends(stdout);
  }

  async size(pkg: string): Promise<number> {
    const { stdout } = await run('apt-cache', [...this.#options, 'show', '--no-all-versions', pkg], { maxBuffer: 1 << 24 });
    return Number(/^Size:\s*(\d+)/m.exec(stdout)?.[1] ?? 0);
  }

  /** Downloads the .deb files of `packages` into `into`. */
  async download(packages: string[], into: string): Promise<void> {
    await run('apt-get', [...this.#options, '-qq', 'download', ...packages], { cwd: into, maxBuffer: 1 << 24 });
  }
}

export function parseDepends(control: string): string[] {
  const line = /^Depends:\s*(.+)$/m.exec(control)?.[1] ?? '';
  return line.split(',').map((d) => d.trim().split(/\s|\|/)[0]!).filter(Boolean);
}
