// When a block device's freed units are discarded (TRIM): a pool setting, read at every open, so it lives apart from
// the device code (a read-only open loads none of it).
export type DiscardMode = 'online' | 'batch' | 'off';
export const DISCARD_MODES: ReadonlyArray<DiscardMode> = ['online', 'batch', 'off'];
