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

/** The error a pending operation rejects with when the object it waits on is closed or times out. */
const errnos = { ENOENT: 2, EINVAL: 22, ECANCELED: 125, ETIMEDOUT: 110, ECONNREFUSED: 111, ECONNRESET: 104, ENETUNREACH: 101, EHOSTUNREACH: 113, ENODEV: 19, EPIPE: 32 } as const;

/** An RdmaError raised by this library itself (a timeout, a closed object, a refused connection). */
export function rdmaError(verb: string, code: keyof typeof errnos, detail: string): RdmaError {
  return new RdmaError(`${verb} failed: ${detail}`, code, errnos[code], verb);
}
