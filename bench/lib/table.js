'use strict';
// Plain-text tables and the number formats the bench prints.

/** columns: [{ name, right }]; rows: arrays of strings (or null for a separator). */
function table(title, columns, rows, notes = []) {
  const widths = columns.map((c, i) => Math.max(c.name.length, ...rows.filter(Boolean).map((r) => String(r[i] ?? '').length)));
  const cell = (text, i) => {
    const s = String(text ?? '');
    return columns[i].right ? s.padStart(widths[i]) : s.padEnd(widths[i]);
  };
  const line = (cells) => `  ${cells.map(cell).join('  ').trimEnd()}`;
  const rule = `  ${widths.map((w) => '-'.repeat(w)).join('  ')}`;
  const out = ['', title, line(columns.map((c) => c.name)), rule];
  for (const r of rows) out.push(r ? line(r) : '');
  for (const n of notes) out.push(`  ${n}`);
  return out.join('\n');
}

function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function size(bytes) {
  if (bytes >= 1 << 30 && bytes % (1 << 30) === 0) return `${bytes / (1 << 30)} GiB`;
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/** A byte count for memory figures: KiB below 1 MiB, then MiB with one decimal. */
function mem(bytes) {
  if (!Number.isFinite(bytes)) return '-';
  const sign = bytes < 0 ? '-' : '';
  const b = Math.abs(bytes);
  if (b < 1 << 20) return `${sign}${(b / 1024).toFixed(1)} KiB`;
  return `${sign}${(b / (1 << 20)).toFixed(1)} MiB`;
}

/** Three significant figures, with thousands separators for big numbers. */
function num(x) {
  if (!Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function ratio(a, b) {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  const r = a / b;
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

function pct(a, b) {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return `${((100 * a) / b).toFixed(0)}%`;
}

function ms(ns) {
  return Number.isFinite(ns) ? `${num(ns / 1e6)} ms` : '-';
}

/** A failure as a short table cell. */
function failed(err) {
  const first = String(err && err.message ? err.message : err).split('\n')[0];
  return first.length > 90 ? `${first.slice(0, 87)}...` : first;
}

module.exports = { table, median, size, mem, num, ratio, pct, ms, failed };
