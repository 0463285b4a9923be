// A PNG's `tEXt` chunks (PNG spec 11.3.4.3): written after IHDR, read back by keyword. Image tools keep a picture's
// generation settings under the keyword `parameters`; that is where the page writes its own. Written here, not with
// png-chunks-extract / png-chunks-encode / png-chunk-text: those three are CommonJS without types, last published in
// 2016-2017, and need crc-32 and sliced besides; the job is one chunk, one table-driven CRC-32 and a walk over chunks.

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** CRC-32 (ISO 3309, reflected polynomial 0xEDB88320), as PNG chunks carry over type and data. */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** tEXt holds Latin-1; anything else becomes '?' (the page writes ASCII, class names included). */
function latin1(s: string): Uint8Array {
  return Uint8Array.from(s, (ch) => (ch.charCodeAt(0) < 256 ? ch.charCodeAt(0) : 0x3f));
}

function isPng(png: Uint8Array): boolean {
  return png.length >= 8 && SIGNATURE.every((b, i) => png[i] === b);
}

/** The PNG `png` with a `tEXt` chunk `keyword`=`text` inserted right after its IHDR chunk. */
export function withText(png: Uint8Array, keyword: string, text: string): Uint8Array {
  if (!isPng(png)) throw new Error("not a PNG file");
  const ihdrEnd = 8 + 12 + new DataView(png.buffer, png.byteOffset).getUint32(8);
  const body = new Uint8Array([...latin1(keyword), 0, ...latin1(text)]);
  const chunk = new Uint8Array(12 + body.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, body.length);
  chunk.set(latin1("tEXt"), 4);
  chunk.set(body, 8);
  view.setUint32(8 + body.length, crc32(chunk.subarray(4, 8 + body.length)));
  const out = new Uint8Array(png.length + chunk.length);
  out.set(png.subarray(0, ihdrEnd));
  out.set(chunk, ihdrEnd);
  out.set(png.subarray(ihdrEnd), ihdrEnd + chunk.length);
  return out;
}

/** The text of the first `tEXt` chunk named `keyword` (with a valid CRC), or null; throws when `png` is no PNG. */
export function readText(png: Uint8Array, keyword: string): string | null {
  if (!isPng(png)) throw new Error("not a PNG file");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let at = 8; at + 12 <= png.length; ) {
    const len = view.getUint32(at);
    if (at + 12 + len > png.length) break;
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    if (type === "IEND") break;
    if (type === "tEXt" && crc32(png.subarray(at + 4, at + 8 + len)) === view.getUint32(at + 8 + len)) {
      const body = png.subarray(at + 8, at + 8 + len);
      const nul = body.indexOf(0);
      const name = String.fromCharCode(...body.subarray(0, nul));
      if (nul > 0 && name === keyword) return Array.from(body.subarray(nul + 1), (b) => String.fromCharCode(b)).join("");
    }
    at += 12 + len;
  }
  return null;
}
