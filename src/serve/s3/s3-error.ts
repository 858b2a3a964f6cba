// Errors of the S3 API: an S3 error code (the names S3 clients switch on), the HTTP status that goes with it, and a
// message for people. The server renders them as the S3 XML error document.

export class S3Error extends Error {
  constructor(
    readonly code: string,
    readonly httpStatus: number,
    message: string,
    /** Extra elements of the XML error document (e.g. Key, BucketName, UploadId). */
    readonly details: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'S3Error';
  }
}

export function isS3Error(error: unknown): error is S3Error {
  return error instanceof S3Error;
}

export const accessDenied = (message = 'Access Denied'): S3Error => new S3Error('AccessDenied', 403, message);
export const invalidArgument = (message: string, details: Record<string, string> = {}): S3Error =>
  new S3Error('InvalidArgument', 400, message, details);
export const invalidRequest = (message: string): S3Error => new S3Error('InvalidRequest', 400, message);
