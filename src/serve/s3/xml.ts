// S3 speaks XML: response documents are built from plain objects (arrays become repeated elements) and request
// bodies (DeleteObjects, CompleteMultipartUpload) parsed with fast-xml-parser, keeping every value a string so a key
// such as "0123" or " padded " comes through exactly.
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { S3Error } from './s3-error.js';

export const S3_XML_NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/';
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false });
const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  isArray: (name) => name === 'Object' || name === 'Part',
});

export type XmlValue = string | number | boolean | XmlElement | XmlValue[] | undefined;
export interface XmlElement {
  [name: string]: XmlValue;
}

/** A whole S3 response document: `<root xmlns="…">…</root>`; undefined values are left out. */
export function xmlDocument(root: string, content: XmlElement): string {
  return XML_DECLARATION + builder.build({ [root]: { '@_xmlns': S3_XML_NAMESPACE, ...withoutUndefined(content) } });
}

/** The S3 error document. */
export function xmlError(fields: { code: string; message: string; resource: string; requestId: string; details: Readonly<Record<string, string>> }): string {
  return (
    XML_DECLARATION +
    builder.build({
      Error: { Code: fields.code, Message: fields.message, ...fields.details, Resource: fields.resource, RequestId: fields.requestId },
    })
  );
}

/** Parses a request body; malformed XML is the client's MalformedXML error. */
export function parseXmlBody(text: string): Record<string, unknown> {
  try {
    const parsed = parser.parse(text, true) as unknown;
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not a document');
    return parsed as Record<string, unknown>;
  } catch {
    throw new S3Error('MalformedXML', 400, 'The XML you provided was not well-formed or did not validate against our published schema.');
  }
}

function withoutUndefined(element: XmlElement): XmlElement {
  const result: XmlElement = {};
  for (const [name, value] of Object.entries(element)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) result[name] = value.map((item) => (isElement(item) ? withoutUndefined(item) : item));
    else result[name] = isElement(value) ? withoutUndefined(value) : value;
  }
  return result;
}

function isElement(value: XmlValue): value is XmlElement {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
