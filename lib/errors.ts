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

  constructor(message: string, code: string, errno: number, verb: string) {
    super(message);
    this.name = 'RdmaError';
    this.code = code;
    this.errno = errno;
    this.verb = verb;
  }
}

/** The error a pending operation rejects with when the object it waits on is closed or times out. */
export function rdmaError(verb: string, code: 'ECANCELED' | 'ETIMEDOUT', detail: string): RdmaError {
  const errno = code === 'ECANCELED' ? 125 : 110;
  return new RdmaError(`${verb} failed: ${detail}`, code, errno, verb);
}
