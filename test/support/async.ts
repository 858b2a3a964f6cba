// Small helpers for the async catalog and pool listings in tests.

/** Every item of an async iterable, in order. */
export async function toArray<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
