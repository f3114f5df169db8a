// The rotating card code, computed on the phone (kopilka.memberapp.cardcode is the
// server's side): the device's ten-digit number, then six digits of a time-based
// one-time password (RFC 6238, HMAC-SHA-256, 30-second steps) from the device's secret.

const keys = new Map();

export function base64urlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

async function hmacKey(secret) {
  let key = keys.get(secret);
  if (!key) {
    key = await crypto.subtle.importKey(
      "raw",
      base64urlToBytes(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    keys.set(secret, key);
  }
  return key;
}

export function stepAt(ms, stepSeconds) {
  return Math.floor(ms / 1000 / stepSeconds);
}

export async function otp(secret, step, digits) {
  const message = new DataView(new ArrayBuffer(8));
  message.setUint32(0, Math.floor(step / 2 ** 32));
  message.setUint32(4, step >>> 0);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), message));
  const offset = mac[mac.length - 1] & 0x0f;
  const value =
    (((mac[offset] & 0x7f) << 24) |
      (mac[offset + 1] << 16) |
      (mac[offset + 2] << 8) |
      mac[offset + 3]) >>>
    0;
  return String(value % 10 ** digits).padStart(digits, "0");
}

// card: {device, secret, step, digits}; ms: the moment (Unix milliseconds).
export async function cardCode(card, ms) {
  return card.device + (await otp(card.secret, stepAt(ms, card.step), card.digits));
}

// The phone's clock corrected by the server's (learnt whenever the app is online).
const OFFSET_KEY = "kopilka.clockOffset";

export function clockOffset() {
  const value = Number(localStorage.getItem(OFFSET_KEY));
  return Number.isFinite(value) && Math.abs(value) < 86400000 ? value : 0;
}

export function rememberServerTime(serverIso, sentAt, receivedAt) {
  const server = Date.parse(serverIso);
  if (!Number.isFinite(server)) return;
  const offset = Math.round(server + (receivedAt - sentAt) / 2 - receivedAt);
  localStorage.setItem(OFFSET_KEY, String(offset));
}
