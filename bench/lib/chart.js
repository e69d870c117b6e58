'use strict';
// The throughput chart: MB/s against write size for scif-net, the Unix socket
// and TCP, drawn as the SCIF patch-set cover letter's "SCIF Performance for
// MIC" graph (bandwidth over a logarithmic size axis, one line per path).
// Plain SVG, no dependencies.

const COLORS = { scif: '#c0392b', unix: '#2471a3', tcp: '#7d8c8d' };
const LABELS = { scif: 'scif-net (node 0 → node 1)', unix: 'node:net, Unix socket', tcp: 'node:net, TCP loopback' };

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function sizeLabel(bytes) {
  if (bytes >= 1 << 20) return `${bytes / (1 << 20)}M`;
  if (bytes >= 1024) return `${bytes / 1024}K`;
  return `${bytes}`;
}

/** res: stream.throughput()'s result; info: { date, machine } for the caption. */
function throughputSvg(res, { date, machine }) {
  const W = 760, H = 460, L = 80, R = 24, T = 56, B = 92;
  const sizes = res.sizes.map((s) => s.size);
  const lanes = ['scif', 'unix', 'tcp'].filter((t) => res.sizes.some((s) => s.results[t] && Number.isFinite(s.results[t].mbps)));
  const max = Math.max(1, ...res.sizes.flatMap((s) => lanes.map((t) => (s.results[t] && s.results[t].mbps) || 0)));
  // A round top a little above the highest point.
  const mag = 10 ** Math.floor(Math.log10(max));
  const top = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * mag).find((v) => v >= max);
  const lx = (size) => {
    const a = Math.log2(sizes[0]), b = Math.log2(sizes[sizes.length - 1]);
    return L + ((Math.log2(size) - a) / (b - a || 1)) * (W - L - R);
  };
  const ly = (v) => T + (1 - v / top) * (H - T - B);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">scif-net stream bandwidth against write size</text>`);
  out.push(`<text x="${W / 2}" y="42" text-anchor="middle" fill="#555">two processes, end to end, median of ${res.repeat} run(s); higher is better</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (top / 5) * i;
    const y = ly(v).toFixed(1);
    out.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 8}" y="${(Number(y) + 4).toFixed(1)}" text-anchor="end">${Math.round(v).toLocaleString('en-US')}</text>`);
  }
  for (const s of sizes) {
    const x = lx(s).toFixed(1);
    out.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${H - B + 18}" text-anchor="middle">${sizeLabel(s)}</text>`);
  }
  out.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#000"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#000"/>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - B + 38}" text-anchor="middle">write size (bytes)</text>`);
  out.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">bandwidth (MB/s, 10^6 B/s)</text>`);
  lanes.forEach((t, i) => {
    const pts = res.sizes.filter((s) => s.results[t] && Number.isFinite(s.results[t].mbps)).map((s) => [lx(s.size), ly(s.results[t].mbps)]);
    out.push(`<polyline fill="none" stroke="${COLORS[t]}" stroke-width="2.5" points="${pts.map((p) => p.map((n) => n.toFixed(1)).join(',')).join(' ')}"/>`);
    for (const [x, y] of pts) out.push(`<rect x="${(x - 4).toFixed(1)}" y="${(y - 4).toFixed(1)}" width="8" height="8" fill="${COLORS[t]}"/>`);
    const ly0 = T + 10 + i * 18;
    out.push(`<line x1="${L + 14}" y1="${ly0}" x2="${L + 40}" y2="${ly0}" stroke="${COLORS[t]}" stroke-width="2.5"/><rect x="${L + 23}" y="${ly0 - 4}" width="8" height="8" fill="${COLORS[t]}"/>`);
    out.push(`<text x="${L + 48}" y="${ly0 + 4}">${esc(LABELS[t])}</text>`);
  });
  const m = machine;
  out.push(`<text x="${L}" y="${H - 22}" fill="#555">${esc(`${date.slice(0, 10)}; ${m.cores} × ${m.cpu}; ${m.platform}; Node ${m.node}`)}</text>`);
  out.push(`<text x="${L}" y="${H - 6}" fill="#555">${esc(`virtual fabric, ${sizeLabel(m.fabricRing)}B endpoint queue; large writes by RMA into the peer's window (scif_mmap'ed here, scif_vwriteto on a card)`)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

module.exports = { throughputSvg };
