// Metric families whose series are plain cells bound once (issue #15): the request path adds to
// a field of an object it already holds (cached on the compiled route, the cluster, the
// endpoint), with no label lookup and no hashing — prom-client's own label children hash their
// labels on every inc(). prom-client renders them: a family is what its Registry asks for
// (name, help, type, get()), and values are summed up only when /metrics is scraped.

export interface Cell {
  value: number;
}

type Labels = Record<string, string>;
interface Value {
  metricName?: string;
  labels: Labels;
  value: number;
}
export interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Value[];
  aggregator: 'sum';
}

abstract class Family<C> {
  protected readonly children = new Map<string, { labels: Labels; cell: C }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** The series for these label values (in labelNames order), created on first use. Bind it once; keep it. */
  child(...values: string[]): C {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (c === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      c = { labels, cell: this.make() };
      this.children.set(key, c);
    }
    return c.cell;
  }

  /** Drops the series whose labels match (a route or upstream a reload removed). */
  remove(match: (labels: Labels) => boolean): void {
    for (const [k, c] of this.children) if (match(c.labels)) this.children.delete(k);
  }

  protected abstract make(): C;
}

export class CounterFamily extends Family<Cell> {
  readonly type = 'counter';
  protected make(): Cell {
    return { value: 0 };
  }
  get(): MetricData {
    const values: Value[] = [];
    for (const { labels, cell } of this.children.values()) values.push({ labels, value: cell.value });
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }
}

/** A gauge (or a counter kept elsewhere) read when scraped: `read` returns [label values, value] rows. */
export class CollectedFamily {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'gauge' | 'counter',
    readonly labelNames: readonly string[],
    private readonly read: () => Iterable<readonly [readonly string[], number]>,
  ) {}
  get(): MetricData {
    const values: Value[] = [];
    for (const [lv, value] of this.read()) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = lv[i] ?? ''));
      values.push({ labels, value });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }
}

export class HistogramCell {
  /** Per bucket (not cumulative; the last one is +Inf). */
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

export class HistogramFamily extends Family<HistogramCell> {
  readonly type = 'histogram';
  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, labelNames);
  }
  protected make(): HistogramCell {
    return new HistogramCell(this.buckets);
  }
  get(): MetricData {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, cell } of this.children.values()) {
      let acc = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        acc += cell.counts[i]!;
        values.push({ metricName: bucket, labels: { ...labels, le: i < this.buckets.length ? String(this.buckets[i]) : '+Inf' }, value: acc });
      }
      values.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: cell.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
