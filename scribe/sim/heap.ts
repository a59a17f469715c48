/**
 * The simulator's timer queue: a binary min-heap ordered by (time, insertion number), so timers
 * due at the same microsecond fire in the order they were set. The backing array is plain JSON:
 * a checkpoint stores it as is and a restored heap has the identical layout.
 */

export interface Timer {
  /** Due time, µs since the Unix epoch. */
  t: number;
  /** Insertion number (tie-break). */
  n: number;
  /** Kind (see simulator.ts). */
  k: string;
  /** Job id, for job timers. */
  j?: string;
  /** Job token (job timers are void when the job's token moved on) or a number argument. */
  x?: number;
  /** Kind-specific payload (plain JSON). */
  p?: unknown;
}

function before(a: Timer, b: Timer): boolean {
  return a.t < b.t || (a.t === b.t && a.n < b.n);
}

export class TimerHeap {
  constructor(private readonly a: Timer[] = []) {}

  get size(): number {
    return this.a.length;
  }

  peek(): Timer | undefined {
    return this.a[0];
  }

  push(x: Timer): void {
    const a = this.a;
    let i = a.length;
    a.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (!before(x, parent)) break;
      a[i] = parent;
      i = p;
    }
    a[i] = x;
  }

  pop(): Timer | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    const n = a.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(a[r]!, a[l]!) ? r : l;
      if (!before(a[c]!, last)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }

  toJSON(): Timer[] {
    return this.a;
  }
}
