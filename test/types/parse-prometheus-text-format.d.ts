// Types for parse-prometheus-text-format (the package ships none): the parts the tests use.
declare module 'parse-prometheus-text-format' {
  export interface MetricFamily {
    readonly name: string;
    readonly help: string;
    readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    readonly metrics: ReadonlyArray<{
      readonly value?: string;
      readonly labels?: Record<string, string>;
      readonly buckets?: Record<string, string>;
      readonly count?: string;
      readonly sum?: string;
    }>;
  }
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
