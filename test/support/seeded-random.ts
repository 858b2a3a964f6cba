/** A small seeded PRNG (mulberry32) so randomized tests reproduce from the seed they print. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function testSeed(): number {
  const fromEnv = process.env.SHARDPOOL_TEST_SEED;
  return fromEnv === undefined ? Math.floor(Math.random() * 1_000_000) : Number(fromEnv);
}
