/**
 * The simulator's agenda: a binary min-heap of events ordered by time, then by insertion order
 * (so two events at the same instant always run in the order they were scheduled).
 */
export interface SimEvent<K> {
  readonly t: number;
  readonly seq: number;
  readonly kind: K;
  /** Subject (task or instance index). */
  readonly ref: number;
  /** Generation token: an event whose token no longer matches its subject is stale. */
  readonly gen: number;
}

export class EventQueue<K> {
  private readonly heap: SimEvent<K>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(t: number, kind: K, ref = -1, gen = 0): void {
    const e: SimEvent<K> = { t, seq: this.seq++, kind, ref, gen };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  pop(): SimEvent<K> | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && before(h[r], h[l]) ? r : l;
      if (!before(h[c], last)) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
    return top;
  }
}

function before<K>(x: SimEvent<K>, y: SimEvent<K>): boolean {
  return x.t < y.t || (x.t === y.t && x.seq < y.seq);
}
