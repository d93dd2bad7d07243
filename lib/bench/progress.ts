/**
 * A progress bar for long runs, on stderr and only when stderr is a terminal (so piped output and logs
 * stay clean). It appears once a run has lasted a second and is erased when the run ends.
 */
export function renderProgress(fraction: number, label: string, width = 30): string {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(clamped * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(clamped * 100)).padStart(3)}%  ${label}`;
}

export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export class Progress {
  readonly #stream: ProgressStream;
  readonly #delayMs: number;
  #started = 0;
  #shown = false;
  #label = '';

  constructor(stream: ProgressStream = process.stderr, delayMs = 1000) {
    this.#stream = stream;
    this.#delayMs = delayMs;
  }

  start(label: string): void {
    this.#label = label;
    this.#started = Date.now();
  }

  update(fraction: number): void {
    if (!this.#stream.isTTY || Date.now() - this.#started < this.#delayMs) return;
    this.#shown = true;
    this.#stream.write(`\r${renderProgress(fraction, this.#label)}`);
  }

  done(): void {
    if (this.#shown) this.#stream.write('\r\x1b[2K');
    this.#shown = false;
  }
}
