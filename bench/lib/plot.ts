/**
 * Latency distributions as a CDF plot (log-scaled x axis): an SVG written by hand, converted to
 * PNG with rsvg-convert (Debian: librsvg2-bin). Without rsvg-convert only the SVG is written.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchDir } from "./paths.js";

export interface Series {
  label: string;
  /** Milliseconds; values ≤ 0 are clamped to the axis minimum (and said so in the legend). */
  samples: readonly number[];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Writes bench/plots/NAME.svg and .png; returns the path of the PNG relative to bench/ (or the SVG's). */
export function cdfPlot(name: string, title: string, series: readonly Series[], xLabel = "milliseconds (log scale)"): string {
  const W = 900, H = 520, L = 70, R = 20, T = 50, B = 130;
  const all = series.flatMap((s) => s.samples).filter((v) => v > 0);
  let lo = Math.pow(10, Math.floor(Math.log10(Math.max(1e-3, all.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY)))));
  let hi = Math.pow(10, Math.ceil(Math.log10(all.reduce((a, b) => Math.max(a, b), 0))));
  if (!(hi > lo)) { lo = 0.1; hi = 10_000; }
  const x = (v: number) => L + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - L - R);
  const y = (p: number) => T + (1 - p) * (H - T - B);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    parts.push(`<line x1="${x(d)}" y1="${T}" x2="${x(d)}" y2="${H - B}" stroke="#ddd"/>`);
    parts.push(`<text x="${x(d)}" y="${H - B + 16}" text-anchor="middle">${d >= 1 ? d.toFixed(0) : d.toString()}</text>`);
  }
  for (const p of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
    parts.push(`<line x1="${L}" y1="${y(p)}" x2="${W - R}" y2="${y(p)}" stroke="${p === 0.5 || p === 0.9 ? "#bbb" : "#eee"}"/>`);
    parts.push(`<text x="${L - 6}" y="${y(p) + 4}" text-anchor="end">${p.toFixed(2)}</text>`);
  }
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - B + 36}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">fraction of samples ≤ x</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const sorted = [...s.samples].sort((a, b) => a - b);
    const n = sorted.length;
    let d = `M ${x(sorted[0] ?? lo).toFixed(1)} ${y(0).toFixed(1)}`;
    sorted.forEach((v, k) => {
      d += ` L ${x(v).toFixed(1)} ${y(k / n).toFixed(1)} L ${x(v).toFixed(1)} ${y((k + 1) / n).toFixed(1)}`;
    });
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    const clamped = sorted.filter((v) => v <= lo).length;
    const ly = H - B + 58 + i * 18;
    parts.push(`<line x1="${L}" y1="${ly - 4}" x2="${L + 24}" y2="${ly - 4}" stroke="${color}" stroke-width="3"/>`);
    parts.push(`<text x="${L + 32}" y="${ly}">${esc(`${s.label} (n=${n}${clamped ? `, ${clamped} at or below ${lo} ms drawn at the axis` : ""})`)}</text>`);
  });
  parts.push("</svg>");
  const dir = join(benchDir, "plots");
  execFileSync("mkdir", ["-p", dir]);
  const svg = join(dir, `${name}.svg`);
  writeFileSync(svg, parts.join("\n"));
  try {
    execFileSync("rsvg-convert", ["-o", join(dir, `${name}.png`), svg], { stdio: ["ignore", "ignore", "pipe"] });
    return `plots/${name}.png`;
  } catch {
    process.stderr.write(`rsvg-convert not available (apt-get install librsvg2-bin): wrote ${svg} only\n`);
    return `plots/${name}.svg`;
  }
}
