import { constants } from 'node:os';

/**
 * The one error class for failures reported by the device or the verbs library. Misuse (a wrong type,
 * a value out of range, use after close) is a TypeError or RangeError instead, never an RdmaError.
 */
export class RdmaError extends Error {
  /** errno name, e.g. 'EOPNOTSUPP', 'ENOMEM', 'ETIMEDOUT'. */
  readonly code: string;
  /** errno number. */
  readonly errno: number;
  /** The verb that failed, e.g. 'ibv_reg_mr'. */
  readonly verb: string;
  /** For a rejected work-request list: the position of the request the provider refused. */
  declare readonly index?: number;
  /** For a connection-manager failure: the event that reported it (REJECTED carries the peer's private data). */
  declare readonly cmEvent?: { type: number; typeName: string; status: number; privateData: Buffer };

  constructor(message: string, code: string, errno: number, verb: string) {
    super(message);
    this.name = 'RdmaError';
    this.code = code;
    this.errno = errno;
    this.verb = verb;
  }
}

/** The one errno table: Node's copy of the C library's (`os.constants.errno`), both ways. */
export type ErrnoName = keyof typeof constants.errno;
let names: Map<number, string> | undefined;

/** errno's name for its number ('ECONNRESET' for 104), `E<n>` for a number the table lacks. */
export function errnoName(errno: number): string {
  names ??= new Map(Object.entries(constants.errno).filter(([name]) => !aliases.has(name)).map(([name, n]) => [n, name]));
  return names.get(errno) ?? `E${errno}`;
}
// Left out so that a number gets the name glibc's strerrorname_np gives it, as the addon's errors do.
const aliases = new Set(['EWOULDBLOCK', 'ENOTSUP', 'EDEADLOCK']);

/** An RdmaError raised by this library itself (a timeout, a closed object, a refused connection). */
export function rdmaError(verb: string, code: ErrnoName, detail: string): RdmaError {
  return new RdmaError(`${verb} failed: ${detail}`, code, constants.errno[code], verb);
}
