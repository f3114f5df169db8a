// A small QR Code encoder (ISO/IEC 18004, model 2) for the rotating card code, so the
// phone can draw a fresh QR code every 30 seconds without a network.
//
// Scope, on purpose: numeric mode only, error correction level M, versions 1 to 3 (a
// single Reed-Solomon block each: up to 101 digits). The tests compare every module of
// its output with segno's for all eight masks and decode it with zbar.

const EC_LEVEL_M = 0b00; // the format information's bits for level M
// version -> [data codewords, error correction codewords, alignment centre or 0]
const VERSIONS = { 1: [16, 10, 0], 2: [28, 16, 18], 3: [44, 26, 22] };

// ---------------------------------------------------------------- GF(256), Reed-Solomon

const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d; // x^8 + x^4 + x^3 + x^2 + 1
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
}

function gfMul(a, b) {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]];
}

// The generator polynomial (x - a^0)(x - a^1)...(x - a^(n-1)), highest degree first.
function generator(n) {
  let poly = [1];
  for (let i = 0; i < n; i++) {
    const next = new Array(poly.length + 1).fill(0);
    for (let j = 0; j < poly.length; j++) {
      next[j] ^= poly[j];
      next[j + 1] ^= gfMul(poly[j], EXP[i]);
    }
    poly = next;
  }
  return poly;
}

// The remainder of data(x) * x^n divided by the generator: the n EC codewords.
export function reedSolomon(data, n) {
  const gen = generator(n);
  const rem = new Array(n).fill(0);
  for (const byte of data) {
    const factor = byte ^ rem[0];
    rem.shift();
    rem.push(0);
    for (let j = 0; j < n; j++) rem[j] ^= gfMul(gen[j + 1], factor);
  }
  return rem;
}

// ---------------------------------------------------------------- data

function pushBits(bits, value, count) {
  for (let i = count - 1; i >= 0; i--) bits.push((value >>> i) & 1);
}

function dataCodewords(digits, capacity) {
  const bits = [];
  pushBits(bits, 0b0001, 4); // numeric mode
  pushBits(bits, digits.length, 10); // character count (versions 1 to 9)
  for (let i = 0; i < digits.length; i += 3) {
    const group = digits.slice(i, i + 3);
    pushBits(bits, parseInt(group, 10), group.length * 3 + 1); // 10, 7 or 4 bits
  }
  const room = capacity * 8;
  pushBits(bits, 0, Math.min(4, room - bits.length)); // terminator
  while (bits.length % 8) bits.push(0);
  const words = [];
  for (let i = 0; i < bits.length; i += 8) {
    let byte = 0;
    for (let j = 0; j < 8; j++) byte = (byte << 1) | bits[i + j];
    words.push(byte);
  }
  for (let pad = 0xec; words.length < capacity; pad ^= 0xec ^ 0x11) words.push(pad);
  return words;
}

function bitLength(n) {
  return 14 + Math.floor(n / 3) * 10 + [0, 4, 7][n % 3];
}

// ---------------------------------------------------------------- the matrix

const MASKS = [
  (r, c) => (r + c) % 2 === 0,
  (r) => r % 2 === 0,
  (r, c) => c % 3 === 0,
  (r, c) => (r + c) % 3 === 0,
  (r, c) => (Math.floor(r / 2) + Math.floor(c / 3)) % 2 === 0,
  (r, c) => ((r * c) % 2) + ((r * c) % 3) === 0,
  (r, c) => (((r * c) % 2) + ((r * c) % 3)) % 2 === 0,
  (r, c) => (((r + c) % 2) + ((r * c) % 3)) % 2 === 0,
];

class Grid {
  constructor(size) {
    this.size = size;
    this.dark = new Uint8Array(size * size);
    this.fixed = new Uint8Array(size * size); // function patterns and format areas
  }
  set(r, c, dark) {
    this.dark[r * this.size + c] = dark ? 1 : 0;
    this.fixed[r * this.size + c] = 1;
  }
  get(r, c) {
    return this.dark[r * this.size + c];
  }
}

function drawFinder(g, top, left) {
  for (let dr = -1; dr <= 7; dr++) {
    for (let dc = -1; dc <= 7; dc++) {
      const r = top + dr;
      const c = left + dc;
      if (r < 0 || c < 0 || r >= g.size || c >= g.size) continue;
      const inside = dr >= 0 && dr <= 6 && dc >= 0 && dc <= 6;
      const ring = inside && (dr === 0 || dr === 6 || dc === 0 || dc === 6);
      const core = dr >= 2 && dr <= 4 && dc >= 2 && dc <= 4;
      g.set(r, c, ring || core); // the separator around it is light
    }
  }
}

function drawFunctionPatterns(g, version) {
  const n = g.size;
  drawFinder(g, 0, 0);
  drawFinder(g, 0, n - 7);
  drawFinder(g, n - 7, 0);
  for (let i = 8; i < n - 8; i++) {
    g.set(6, i, i % 2 === 0);
    g.set(i, 6, i % 2 === 0);
  }
  const centre = VERSIONS[version][2];
  if (centre) {
    for (let dr = -2; dr <= 2; dr++) {
      for (let dc = -2; dc <= 2; dc++) {
        g.set(centre + dr, centre + dc, Math.max(Math.abs(dr), Math.abs(dc)) !== 1);
      }
    }
  }
  drawFormat(g, 0); // reserves the format areas (overwritten once the mask is known)
}

export function formatBits(mask) {
  const data = (EC_LEVEL_M << 3) | mask;
  let value = data << 10;
  for (let i = 14; i >= 10; i--) {
    if (value & (1 << i)) value ^= 0x537 << (i - 10); // BCH(15, 5)
  }
  return ((data << 10) | value) ^ 0x5412;
}

function drawFormat(g, mask) {
  const bits = formatBits(mask);
  const bit = (i) => (bits >>> i) & 1;
  const n = g.size;
  for (let i = 0; i <= 5; i++) g.set(i, 8, bit(i));
  g.set(7, 8, bit(6));
  g.set(8, 8, bit(7));
  g.set(8, 7, bit(8));
  for (let i = 9; i < 15; i++) g.set(8, 14 - i, bit(i));
  for (let i = 0; i < 8; i++) g.set(8, n - 1 - i, bit(i));
  for (let i = 8; i < 15; i++) g.set(n - 15 + i, 8, bit(i));
  g.set(n - 8, 8, 1); // the dark module
}

function placeData(g, codewords) {
  const n = g.size;
  let index = 0;
  const total = codewords.length * 8;
  for (let right = n - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5; // skip the vertical timing pattern
    const upward = ((right + 1) & 2) === 0;
    for (let step = 0; step < n; step++) {
      const r = upward ? n - 1 - step : step;
      for (let j = 0; j < 2; j++) {
        const c = right - j;
        if (g.fixed[r * n + c]) continue;
        let dark = 0;
        if (index < total) dark = (codewords[index >>> 3] >>> (7 - (index & 7))) & 1;
        index++; // the remainder bits after the last codeword are light
        g.dark[r * n + c] = dark;
      }
    }
  }
}

function applyMask(g, mask) {
  const n = g.size;
  const test = MASKS[mask];
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (!g.fixed[r * n + c] && test(r, c)) g.dark[r * n + c] ^= 1;
    }
  }
}

// ---------------------------------------------------------------- choosing the mask

function linePenalty(line) {
  let score = 0;
  let run = 1;
  for (let i = 1; i <= line.length; i++) {
    if (i < line.length && line[i] === line[i - 1]) {
      run++;
      continue;
    }
    if (run >= 5) score += 3 + (run - 5); // rule 1: runs of one colour
    run = 1;
  }
  // rule 3: a finder-like 1:1:3:1:1 pattern with four light modules on a side
  const finder = [1, 0, 1, 1, 1, 0, 1];
  const light = (i) => i < 0 || i >= line.length || line[i] === 0;
  for (let i = 0; i + 7 <= line.length; i++) {
    let match = true;
    for (let k = 0; k < 7; k++) {
      if (line[i + k] !== finder[k]) {
        match = false;
        break;
      }
    }
    if (!match) continue;
    const before = light(i - 1) && light(i - 2) && light(i - 3) && light(i - 4);
    const after = light(i + 7) && light(i + 8) && light(i + 9) && light(i + 10);
    if (before || after) score += 40;
  }
  return score;
}

export function penalty(g) {
  const n = g.size;
  let score = 0;
  for (let r = 0; r < n; r++) {
    const row = [];
    const col = [];
    for (let c = 0; c < n; c++) {
      row.push(g.get(r, c));
      col.push(g.get(c, r));
    }
    score += linePenalty(row) + linePenalty(col);
  }
  for (let r = 0; r < n - 1; r++) {
    for (let c = 0; c < n - 1; c++) {
      const v = g.get(r, c);
      if (v === g.get(r, c + 1) && v === g.get(r + 1, c) && v === g.get(r + 1, c + 1)) score += 3;
    }
  }
  let dark = 0;
  for (let i = 0; i < n * n; i++) dark += g.dark[i];
  score += 10 * Math.floor(Math.abs(dark * 20 - n * n * 10) / (n * n)); // rule 4
  return score;
}

// ---------------------------------------------------------------- the encoder

export function encodeNumeric(digits, options = {}) {
  if (!/^[0-9]+$/.test(digits)) throw new Error("only digits can be encoded");
  const version = [1, 2, 3].find((v) => bitLength(digits.length) <= VERSIONS[v][0] * 8);
  if (!version) throw new Error("too many digits for this encoder");
  const [capacity, ecCount] = VERSIONS[version];
  const data = dataCodewords(digits, capacity);
  const codewords = data.concat(reedSolomon(data, ecCount));
  const size = 17 + 4 * version;
  const build = (mask) => {
    const g = new Grid(size);
    drawFunctionPatterns(g, version);
    placeData(g, codewords);
    applyMask(g, mask);
    drawFormat(g, mask);
    return g;
  };
  let best = null;
  let bestMask = 0;
  if (options.mask !== undefined) {
    best = build(options.mask);
    bestMask = options.mask;
  } else {
    let bestScore = Infinity;
    for (let mask = 0; mask < 8; mask++) {
      const g = build(mask);
      const score = penalty(g);
      if (score < bestScore) {
        best = g;
        bestMask = mask;
        bestScore = score;
      }
    }
  }
  const rows = [];
  for (let r = 0; r < size; r++) rows.push(Array.from(best.dark.subarray(r * size, (r + 1) * size)));
  return { version, mask: bestMask, size, rows, penalty: penalty(best) };
}

// An SVG element of the symbol with a four-module quiet zone (attributes only, no inline
// styles, so the page's Content-Security-Policy holds).
export function renderSvg(doc, qr, label) {
  const ns = "http://www.w3.org/2000/svg";
  const quiet = 4;
  const full = qr.size + 2 * quiet;
  const svg = doc.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${full} ${full}`);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("role", "img");
  if (label) svg.setAttribute("aria-label", label);
  const back = doc.createElementNS(ns, "rect");
  back.setAttribute("width", String(full));
  back.setAttribute("height", String(full));
  back.setAttribute("fill", "#ffffff");
  svg.appendChild(back);
  let d = "";
  qr.rows.forEach((row, r) => {
    row.forEach((dark, c) => {
      if (dark) d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
    });
  });
  const path = doc.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000000");
  svg.appendChild(path);
  return svg;
}
