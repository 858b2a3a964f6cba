// S3 speaks XML: response documents are built from plain objects (arrays become repeated elements) and request
// bodies (DeleteObjects, CompleteMultipartUpload) parsed with fast-xml-parser, keeping every value a string so a key
// such as "0123" or " padded " comes through exactly. Text is decoded by XML's own rules (xmlTextDecoder below), not
// the parser's defaults: clients escape differently (Go writes a quote as &#34;, Java as &quot;, the JS SDK a line
// feed as &#x0A;) and every spelling must arrive as the same character, or a key or an ETag silently differs.
import { XMLBuilder, XMLParser, type EntityDecoderOptions } from 'fast-xml-parser';
import { S3Error } from './s3-error.js';

export const S3_XML_NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/';
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false });
/**
 * XML 1.0's references and nothing else (§ 4.1, § 4.6): the five predefined entities and character references, decimal
 * (&#34;) or hexadecimal (&#x22;), each naming a character XML allows. Anything else — an entity a DTD would have to
 * declare, a reference to NUL or to half a surrogate pair, a bare "&" — is not well-formed, and the body is refused as
 * MalformedXML rather than passed on half decoded. DTDs themselves are refused (no entity expansion from a request).
 * CDATA sections never reach the decoder: their text is literal, as XML says. (Attributes are ignored.)
 */
const xmlTextDecoder: EntityDecoderOptions = {
  setExternalEntities: () => undefined,
  addInputEntities: () => {
    throw new Error('a DOCTYPE with entity declarations');
  },
  reset: () => undefined,
  setXmlVersion: () => undefined,
  decode: decodeXmlText,
};

const PREDEFINED_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const REFERENCE = /&([^;&]*);?/g;

/**
 * The text of an element as XML defines it: line ends as written normalised to "\n" (§ 2.11; a carriage return
 * meant as one is sent as &#13;), then every reference replaced by its character.
 */
export function decodeXmlText(text: string): string {
  const normalised = text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
  if (!normalised.includes('&')) return normalised;
  return normalised.replace(REFERENCE, (whole, name: string) => {
    if (!whole.endsWith(';')) throw new Error('an "&" that starts no reference');
    const predefined = PREDEFINED_ENTITIES[name];
    if (predefined !== undefined) return predefined;
    const numeric = /^#(?:([0-9]{1,7})|x([0-9a-fA-F]{1,6}))$/.exec(name);
    if (!numeric) throw new Error(`an undeclared entity &${name};`);
    const codePoint = numeric[1] !== undefined ? Number.parseInt(numeric[1], 10) : Number.parseInt(numeric[2] as string, 16);
    if (!isXmlChar(codePoint)) throw new Error(`a reference to a character XML does not allow (${codePoint})`);
    return String.fromCodePoint(codePoint);
  });
}

/** XML 1.0's Char production: tab, line feed, carriage return, and U+0020 up, without surrogates, U+FFFE and U+FFFF. */
function isXmlChar(codePoint: number): boolean {
  return (
    codePoint === 0x9 ||
    codePoint === 0xa ||
    codePoint === 0xd ||
    (codePoint >= 0x20 && codePoint <= 0xd7ff) ||
    (codePoint >= 0xe000 && codePoint <= 0xfffd) ||
    (codePoint >= 0x10000 && codePoint <= 0x10ffff)
  );
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  entityDecoder: xmlTextDecoder,
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
