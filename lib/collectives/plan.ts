/**
 * A collective's plan as the C core runs it (native/collectives/engine.h): steps of operations over a
 * work area of three regions, each operation 7 numbers. Within a step, local copies and reductions run
 * first, then every send and receive proceeds at once; a step ends when all of them have.
 */
export const enum Region {
  Src = 0,
  Dst = 1,
  Tmp = 2,
}

/** native/collectives/engine.h's OpKind (test/unit/constants.test.ts compares them). */
export enum OpKind {
  StepEnd = 0,
  Send = 1,
  Recv = 2,
  RecvReduce = 3,
  Copy = 4,
  Reduce = 5,
}

export const FIELDS = 7; // kind, peer, region, offset, length, region2, offset2

export interface Plan {
  ops: Float64Array;
  /** Region sizes in bytes. */
  srcBytes: number;
  dstBytes: number;
  tmpBytes: number;
  /** Where the caller's input is copied before the first step, and the output read after the last. */
  inputRegion: Region;
  inputOffset: number;
  outputRegion: Region;
  outputOffset: number;
}

export class PlanBuilder {
  private readonly fields: number[] = [];

  send(peer: number, region: Region, offset: number, length: number): this {
    this.fields.push(OpKind.Send, peer, region, offset, length, 0, 0);
    return this;
  }
  recv(peer: number, region: Region, offset: number, length: number): this {
    this.fields.push(OpKind.Recv, peer, region, offset, length, 0, 0);
    return this;
  }
  /** Reduces what arrives into region[offset..]: out = out op in, chunk by chunk as it arrives. */
  recvReduce(peer: number, region: Region, offset: number, length: number): this {
    this.fields.push(OpKind.RecvReduce, peer, region, offset, length, 0, 0);
    return this;
  }
  copy(region: Region, offset: number, length: number, from: Region, fromOffset: number): this {
    if (length > 0) this.fields.push(OpKind.Copy, 0, region, offset, length, from, fromOffset);
    return this;
  }
  /** region[offset..] = region[offset..] op from[fromOffset..] */
  reduce(region: Region, offset: number, length: number, from: Region, fromOffset: number): this {
    if (length > 0) this.fields.push(OpKind.Reduce, 0, region, offset, length, from, fromOffset);
    return this;
  }
  step(): this {
    const last = this.fields.length - FIELDS;
    if (this.fields.length > 0 && this.fields[last] !== OpKind.StepEnd) this.fields.push(OpKind.StepEnd, 0, 0, 0, 0, 0, 0);
    return this;
  }
  build(layout: Omit<Plan, 'ops'>): Plan {
    this.step();
    return { ops: Float64Array.from(this.fields), ...layout };
  }
}
