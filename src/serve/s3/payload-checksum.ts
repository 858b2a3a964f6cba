// The flexible checksums S3 clients send with a body (x-amz-checksum-crc32 / -crc32c / -crc64nvme / -sha1 / -sha256, as a header
// or an aws-chunked trailer): base64 of the big-endian digest of the decoded bytes. The AWS SDK for JavaScript v3
// computes CRC64NVME itself, so a client may pick it for any put.
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { createCRC32, createCRC64, type IHasher } from 'hash-wasm';
import { S3Error } from './s3-error.js';

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

const CRC32C_POLYNOMIAL = 0x82f63b78;
/** CRC-64/NVME in hash-wasm's reflected form (check value of "123456789": ae8b14860a799888). */
const CRC64NVME_POLYNOMIAL = '9a6c9329ac4bc9b5';

export interface PayloadChecksum {
  update(data: Buffer): void;
  digestBase64(): string;
}

/** The algorithm named by an x-amz-checksum-NAME header or trailer name; unknown ones are refused. */
export function checksumAlgorithmOf(headerName: string): ChecksumAlgorithm {
  const name = headerName.toLowerCase().replace(/^x-amz-checksum-/, '');
  if ((CHECKSUM_ALGORITHMS as ReadonlyArray<string>).includes(name)) return name as ChecksumAlgorithm;
  throw new S3Error('InvalidRequest', 400, `shardpool does not support the checksum algorithm ${name}; use CRC32, CRC32C, CRC64NVME, SHA1 or SHA256`);
}

export async function createPayloadChecksum(algorithm: ChecksumAlgorithm): Promise<PayloadChecksum> {
  switch (algorithm) {
    case 'crc32': {
      let value = 0;
      return {
        update: (data) => {
          value = crc32(data, value);
        },
        digestBase64: () => uint32Base64(value),
      };
    }
    case 'crc32c':
      return hasherChecksum(await createCRC32(CRC32C_POLYNOMIAL));
    case 'crc64nvme':
      return hasherChecksum(await createCRC64(CRC64NVME_POLYNOMIAL));
    case 'sha1':
    case 'sha256': {
      const hash: Hash = createHash(algorithm);
      return { update: (data) => void hash.update(data), digestBase64: () => hash.digest('base64') };
    }
  }
}

export function checksumMismatch(algorithm: ChecksumAlgorithm): S3Error {
  return new S3Error('BadDigest', 400, `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
}

function hasherChecksum(hasher: IHasher): PayloadChecksum {
  hasher.init();
  return { update: (data) => void hasher.update(data), digestBase64: () => Buffer.from(hasher.digest('binary')).toString('base64') };
}

function uint32Base64(value: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0, 0);
  return bytes.toString('base64');
}
