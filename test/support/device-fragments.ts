// Writing one test fragment straight to a disk (below the pool): replica:1, one extent, the data as its own extent.
import type { Disk } from '../../src/disk/disk.js';
import { newUuid } from '../../src/format/uuid.js';
import { checksum128 } from '../../src/redundancy/checksum.js';

export async function writeTestFragment(disk: Disk, key: string, data: Buffer): Promise<{ versionId: string; locationBytes: number }> {
  const versionId = newUuid();
  const { locationBytes } = await disk.writeFragment(
    {
      versionId,
      extentIndex: 0,
      fragmentIndex: 0,
      key,
      policy: { kind: 'replica', copies: 1 },
      extentLengthBytes: data.length,
      extentChecksum: checksum128(data),
      dataLengthBytes: data.length,
      dataChecksum: checksum128(data),
    },
    data,
  );
  return { versionId, locationBytes };
}
