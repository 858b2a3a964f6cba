// Request bodies as the XML writers of real clients spell them: every spelling of a character is that character.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseXmlBody } from '../../../src/serve/s3/xml.js';
import { S3Error } from '../../../src/serve/s3/s3-error.js';

const KEY = 'a&b <c> "q" \'s\'\ttab\nline ü😀';
const ETAG = '"0cc175b9c0f1b6a831c399e269772661"';

/** How each client's XML writer escapes element text. */
const WRITERS: ReadonlyArray<{ client: string; escape: (text: string) => string }> = [
  {
    // Go's encoding/xml (xml.EscapeText: aws-sdk-go, minio-go, rclone).
    client: 'Go',
    escape: (text) =>
      text.replace(/[&<>"'\t\n\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;', '\t': '&#x9;', '\n': '&#xA;', '\r': '&#xD;' })[c] as string),
  },
  {
    // Java's writers: named entities for quotes, decimal references for line ends.
    client: 'Java',
    escape: (text) =>
      text.replace(/[&<>"'\n\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\n': '&#10;', '\r': '&#13;' })[c] as string),
  },
  {
    // Python's xml.etree.ElementTree (botocore): only & < >, everything else raw.
    client: 'Python',
    escape: (text) => text.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c] as string),
  },
  {
    // The AWS SDK for JavaScript v3 (@aws-sdk/xml-builder): & < > and upper-case hex references for line ends.
    client: 'JavaScript',
    escape: (text) =>
      text.replace(/[&<>\r\n\u0085\u2028]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#x0D;', '\n': '&#x0A;', '\u0085': '&#x85;', '\u2028': '&#x2028;' })[c] as string),
  },
];

test('DeleteObjects and CompleteMultipartUpload bodies decode to the same key and ETag whichever client wrote them', () => {
  for (const { client, escape } of WRITERS) {
    const deletion = parseXmlBody(
      `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>${escape(KEY)}</Key></Object><Quiet>false</Quiet></Delete>`,
    );
    assert.deepEqual(deletion, { '?xml': '', Delete: { Object: [{ Key: KEY }], Quiet: 'false' } }, client);
    const completion = parseXmlBody(
      `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>${escape(ETAG)}</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`,
    );
    assert.deepEqual(completion, { CompleteMultipartUpload: { Part: [{ ETag: ETAG, PartNumber: '1' }] } }, client);
  }
});

test('decimal and hexadecimal character references decode, CDATA stays literal, raw line ends are normalised', () => {
  const parsed = parseXmlBody('<D><Object><Key>a&#38;b&#x26;c&#X;</Key></Object></D>'.replace('&#X;', '&#x1F600;'));
  assert.deepEqual(parsed, { D: { Object: [{ Key: 'a&b&c😀' }] } });
  assert.deepEqual(parseXmlBody('<D><Object><Key><![CDATA[a&amp;b]]></Key></Object></D>'), { D: { Object: [{ Key: 'a&amp;b' }] } });
  assert.deepEqual(parseXmlBody('<D><Object><Key>a\r\nb\rc&#13;</Key></Object></D>'), { D: { Object: [{ Key: 'a\nb\nc\r' }] } });
});

test('a body that is not well-formed XML is MalformedXML, never half decoded', () => {
  for (const body of [
    '<D><Object><Key>a & b</Key></Object></D>',
    '<D><Object><Key>&nbsp;</Key></Object></D>',
    '<D><Object><Key>&#0;</Key></Object></D>',
    '<D><Object><Key>&#xD800;</Key></Object></D>',
    '<D><Object><Key>&#x110000;</Key></Object></D>',
    '<!DOCTYPE D [<!ENTITY e "x">]><D><Object><Key>&e;</Key></Object></D>',
  ]) {
    assert.throws(() => parseXmlBody(body), (error: unknown) => error instanceof S3Error && error.code === 'MalformedXML', body);
  }
});
