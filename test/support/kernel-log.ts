/** The guest kernel's log, read as it grows (/dev/kmsg; root in the VM): for tests that must not oops it. */
import { constants, openSync, readSync, writeSync, closeSync } from 'node:fs';

/** Kernel log lines that mean the kernel itself went wrong (rxe's own error messages do not match). */
export const KERNEL_TROUBLE = /Oops|BUG:|general protection|WARNING:|Call Trace|UBSAN|KASAN|refcount_t|hung_task|stall/;

/** /dev/kmsg from where it stood when opened: read() returns the records added since the last read. */
export class KernelLog {
  readonly #fd = openSync('/dev/kmsg', constants.O_RDWR | constants.O_NONBLOCK);
  readonly #buffer = Buffer.alloc(8192);

  constructor() {
    this.read();
  }

  read(): string[] {
    const lines: string[] = [];
    for (;;) {
      try {
        const n = readSync(this.#fd, this.#buffer);
        lines.push(this.#buffer.toString('utf8', 0, n).trim());
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') return lines;
        if (code !== 'EPIPE') throw error; // EPIPE: records were overwritten before this read; it goes on after them
      }
    }
  }

  /** The new records that show the kernel went wrong. */
  trouble(): string[] {
    return this.read().filter((line) => KERNEL_TROUBLE.test(line));
  }

  /** A debug-level record (kept in the log, not printed on the console): a trace after it happened after this. */
  mark(text: string): void {
    writeSync(this.#fd, `<7>${text}\n`);
  }

  close(): void {
    closeSync(this.#fd);
  }
}
