// Figures: the median of repeated measurements with their min and max.
export interface Figure {
  median: number;
  min: number;
  max: number;
}

export async function measure(repeats: number, once: () => Promise<number>): Promise<Figure> {
  const values: number[] = [];
  for (let index = 0; index < repeats; index += 1) values.push(await once());
  return figureOf(values);
}

export function figureOf(values: ReadonlyArray<number>): Figure {
  if (values.length === 0) throw new Error('a figure needs at least one value');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  // An even count takes the mean of the middle two.
  const median = sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number };
}

export function scale(figure: Figure, unit: number): Figure {
  return { median: figure.median / unit, min: figure.min / unit, max: figure.max / unit };
}

export function seconds(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e9;
}

/** "1,902 (1,512–1,950)" */
export function formatFigure(figure: Figure, digits = 0): string {
  const f = (value: number) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return `${f(figure.median)} (${f(figure.min)}–${f(figure.max)})`;
}
