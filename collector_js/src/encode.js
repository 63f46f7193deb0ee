// Telemetry wire format v1: `1z.` + base64url(deflate-raw(JSON)) or `1j.` + base64url(JSON).

export const MAX_VALUE = 4096; // the sidecar rejects longer values
// JSON bytes whose 1j. form (the larger one, bar a few bytes of deflate framing) fits.
const MAX_JSON = ((MAX_VALUE - 3) * 3) / 4 - 64;
const ORDER = ['touch', 'scroll', 'mouse', 'keys']; // dropped first to last if ever too big

const utf8 = (s) => new TextEncoder().encode(s);

export function b64url(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** JSON text of `doc`, dropping whole modalities (touch, scroll, mouse, keys) until it fits 4 KiB. */
export function fitJson(doc) {
  let json = JSON.stringify(doc);
  if (utf8(json).length <= MAX_JSON) return json;
  const m = { ...doc.m };
  for (const k of ORDER) {
    delete m[k];
    json = JSON.stringify({ ...doc, m });
    if (utf8(json).length <= MAX_JSON) break;
  }
  return json;
}

/** Synchronous `1j.` value (old browsers, XHR when no compressed value is ready). */
export const encodeJson = (doc) => '1j.' + b64url(utf8(fitJson(doc)));

/** `1z.` value via CompressionStream('deflate-raw'); falls back to `1j.` where unsupported. */
export async function encodeDeflate(doc) {
  const json = fitJson(doc);
  let cs;
  try {
    cs = new CompressionStream('deflate-raw');
  } catch {
    return '1j.' + b64url(utf8(json));
  }
  const w = cs.writable.getWriter();
  w.write(utf8(json));
  w.close();
  return '1z.' + b64url(new Uint8Array(await new Response(cs.readable).arrayBuffer()));
}
