export async function peerCephMode(_options: { readonly quick: boolean; readonly json: boolean; readonly rounds: number | undefined }): Promise<void> {
  throw new Error('--peer ceph is not written yet');
}
