// A runNodeScript module for the network lab's self-test (support/net-lab.test.ts): one HTTP GET from inside a lab
// namespace, bounded in time; the outcome, success or failure, comes back as a value.
export interface ProbeInput {
  readonly url: string;
  readonly timeoutMs: number;
}

export type ProbeOutput = { readonly ok: true; readonly status: number; readonly body: string } | { readonly ok: false; readonly error: string };

export default async function probe(input: ProbeInput): Promise<ProbeOutput> {
  try {
    const response = await fetch(input.url, { signal: AbortSignal.timeout(input.timeoutMs) });
    return { ok: true, status: response.status, body: await response.text() };
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    return { ok: false, error: String(cause ?? error) };
  }
}
