// An s3cmd configuration file for a daemon's S3 endpoint (plain HTTP, SigV4, path-style addressing).
import { promises as fs } from 'node:fs';

export async function writeS3cmdConfig(
  filePath: string,
  host: string,
  keys: { readonly accessKeyId: string; readonly secretAccessKey: string },
  extraLines: ReadonlyArray<string> = [],
): Promise<void> {
  const lines = [
    '[default]',
    `access_key = ${keys.accessKeyId}`,
    `secret_key = ${keys.secretAccessKey}`,
    `host_base = ${host}`,
    `host_bucket = ${host}`,
    'use_https = False',
    'signature_v2 = False',
    'bucket_location = us-east-1',
    ...extraLines,
    '',
  ];
  await fs.writeFile(filePath, lines.join('\n'));
}
