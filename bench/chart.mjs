// SVG chart of the hand-off case, built as a plain string (no dependency): for every size, one bar per
// method with its throughput (data size / median time, the time printed on the bar), and below it the
// memory of both processes together (PSS, plus unmapped tmpfs for the /dev/shm file) as a multiple of
// the data size.
const COLORS = {
  memfd: '#1b7f3b', 'memfd-write': '#5cb85c', pipe: '#d9534f', fork: '#8e44ad', shm: '#f0ad4e',
  'c-map': '#2c3e50', 'c-write': '#7f8c8d',
};
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const sizeLabel = (n) => (n >= 2 ** 30 ? `${n / 2 ** 30} GiB` : `${n / 2 ** 20} MiB`);
const timeLabel = (s) => (s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(0)} ms`);

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * @param handoff results by size: { [size]: { [method]: { seconds: {median}, pssTotal: {median} } } }
 * @param methods [{ name, label }] in display order
 * @param meta machine description for the caption
 */
export function transferChart(handoff, methods, meta) {
  const sizes = Object.keys(handoff).map(Number).sort((a, b) => a - b);
  const shown = methods.filter((m) => sizes.some((s) => handoff[s][m.name]?.seconds));
  const W = 960, left = 70, right = 20, top = 60, h1 = 300, gap = 70, h2 = 150, legendH = 20 * shown.length + 10;
  const H = top + h1 + gap + h2 + 50 + legendH + 10;
  const plotW = W - left - right;
  const groupW = plotW / Math.max(1, sizes.length);
  const barW = Math.min(40, (groupW * 0.8) / Math.max(1, shown.length));
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">Handing data from a Node parent to a Node child (child verifies every byte)</text>`);
  out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${esc(`throughput = size / median time (higher is better); ${meta.cores} x ${meta.cpu ?? 'cpu'}, Linux ${meta.kernel}, Node ${meta.node}, ${meta.date.slice(0, 10)}`)}</text>`);

  // Panel 1: throughput.
  const tput = (s, m) => { const r = handoff[s][m]; return r?.seconds ? s / r.seconds.median / 2 ** 30 : null; };
  const maxT = niceMax(Math.max(0, ...sizes.flatMap((s) => shown.map((m) => tput(s, m.name) ?? 0))));
  const y1 = (v) => top + h1 - (v / maxT) * h1;
  for (let i = 0; i <= 5; i++) {
    const v = (maxT * i) / 5;
    out.push(`<line x1="${left}" x2="${W - right}" y1="${y1(v)}" y2="${y1(v)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${left - 6}" y="${y1(v) + 4}" text-anchor="end" fill="#555">${+v.toFixed(2)}</text>`);
  }
  out.push(`<text transform="translate(16 ${top + h1 / 2}) rotate(-90)" text-anchor="middle" fill="#333">GiB/s</text>`);
  sizes.forEach((s, gi) => {
    const x0 = left + gi * groupW + (groupW - barW * shown.length) / 2;
    shown.forEach((m, mi) => {
      const v = tput(s, m.name);
      const x = x0 + mi * barW;
      if (v === null) {
        out.push(`<text x="${x + barW / 2}" y="${top + h1 - 4}" text-anchor="middle" font-size="10" fill="#999">n/a</text>`);
        return;
      }
      const r = handoff[s][m.name].seconds;
      out.push(`<rect x="${x + 2}" y="${y1(v)}" width="${barW - 4}" height="${top + h1 - y1(v)}" fill="${COLORS[m.name] ?? '#999'}"><title>${esc(`${m.label}, ${sizeLabel(s)}: median ${timeLabel(r.median)} (min ${timeLabel(r.min)}, max ${timeLabel(r.max)}, ${r.n} runs)`)}</title></rect>`);
      out.push(`<text transform="translate(${x + barW / 2 + 4} ${y1(v) - 4}) rotate(-90)" font-size="10" fill="#333">${timeLabel(r.median)}</text>`);
    });
    out.push(`<text x="${left + gi * groupW + groupW / 2}" y="${top + h1 + 18}" text-anchor="middle" font-weight="bold">${sizeLabel(s)}</text>`);
  });
  out.push(`<line x1="${left}" x2="${W - right}" y1="${top + h1}" y2="${top + h1}" stroke="#333"/>`);

  // Panel 2: memory of both processes / data size.
  const top2 = top + h1 + gap;
  const mem = (s, m) => { const r = handoff[s][m]; return r?.pssTotal ? r.pssTotal.median / s : null; };
  const maxM = niceMax(Math.max(1, ...sizes.flatMap((s) => shown.map((m) => mem(s, m.name) ?? 0))));
  const y2 = (v) => top2 + h2 - (v / maxM) * h2;
  out.push(`<text x="${left}" y="${top2 - 24}" fill="#333">Memory of parent + child when the child has verified (PSS, + the unmapped /dev/shm file), as a multiple of the data size</text>`);
  out.push(`<text x="${left}" y="${top2 - 9}" fill="#555" font-size="11">(lower is better; the dashed line is the data itself; two idle Node processes add ~40-50 MiB, which dominates small sizes)</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (maxM * i) / 4;
    out.push(`<line x1="${left}" x2="${W - right}" y1="${y2(v)}" y2="${y2(v)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${left - 6}" y="${y2(v) + 4}" text-anchor="end" fill="#555">${+v.toFixed(1)}x</text>`);
  }
  out.push(`<line x1="${left}" x2="${W - right}" y1="${y2(1)}" y2="${y2(1)}" stroke="#333" stroke-dasharray="4 3"/>`);
  sizes.forEach((s, gi) => {
    const x0 = left + gi * groupW + (groupW - barW * shown.length) / 2;
    shown.forEach((m, mi) => {
      const v = mem(s, m.name);
      if (v === null) return;
      const x = x0 + mi * barW;
      out.push(`<rect x="${x + 2}" y="${y2(v)}" width="${barW - 4}" height="${top2 + h2 - y2(v)}" fill="${COLORS[m.name] ?? '#999'}" opacity="0.85"><title>${esc(`${m.label}, ${sizeLabel(s)}: ${(v).toFixed(2)}x the data size`)}</title></rect>`);
      out.push(`<text x="${x + barW / 2}" y="${y2(v) - 3}" text-anchor="middle" font-size="9" fill="#333">${v.toFixed(1)}</text>`);
    });
    out.push(`<text x="${left + gi * groupW + groupW / 2}" y="${top2 + h2 + 18}" text-anchor="middle" font-weight="bold">${sizeLabel(s)}</text>`);
  });
  out.push(`<line x1="${left}" x2="${W - right}" y1="${top2 + h2}" y2="${top2 + h2}" stroke="#333"/>`);

  // Legend.
  const ly = top2 + h2 + 44;
  shown.forEach((m, i) => {
    const x = left;
    const y = ly + i * 20;
    out.push(`<rect x="${x}" y="${y - 10}" width="14" height="14" fill="${COLORS[m.name] ?? '#999'}"/>`);
    out.push(`<text x="${x + 20}" y="${y + 1}">${esc(`${m.name}: ${m.label}`)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
