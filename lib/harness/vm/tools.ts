/** The host programs the VM is made with, found up front so a missing one is a one-line message. */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

// depmod lives in /usr/sbin, which is not on an ordinary user's PATH.
const extraDirs = ['/usr/sbin', '/sbin'];

export function findTool(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of [...path.split(delimiter).filter(Boolean), ...extraDirs]) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Throws naming every missing program (all of them come from scripts/setup.sh's packages). */
export function requireTools(names: string[]): void {
  const missing = names.filter((name) => !findTool(name));
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run 'bash scripts/setup.sh' to install what the VM needs`);
}

/** The full path of a program, for those that may be off the PATH (depmod). */
export function tool(name: string): string {
  requireTools([name]);
  return findTool(name)!;
}
