// How block devices are opened: a setting every command parses (--direct-io), kept apart from the I/O code itself so
// that parsing it loads none of that.
export type DirectIoMode = 'auto' | 'always' | 'never';

export const DIRECT_IO_MODES: ReadonlyArray<DirectIoMode> = ['auto', 'always', 'never'];
