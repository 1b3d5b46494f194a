// The Next token view's bars, drawn by the browser: the body of the chart's `js_on_load` (gr.HTML gives it
// `element`, `props` and `watch`). The server sends every logit once per prompt (gpt.plots.next_token_chart);
// a move of the temperature, top-k or top-p slider redraws the bars here at once, as the slider moves,
// without waiting for the server. `filtered` is gpt.engine.filtered_probs, step for step (the sampler's
// numbers; tests/test_next_token_chart.py checks them against it); the server's own answer (the status, the
// token list, the PNG) follows a moment later.
const SVG_NS = "http://www.w3.org/2000/svg";
const KNOBS = { temperature: "nt-temperature", top_k: "nt-top-k", top_p: "nt-top-p" };

function softmax(xs) {
  let top = -Infinity;
  for (let i = 0; i < xs.length; i++) if (xs[i] > top) top = xs[i];
  const e = new Float64Array(xs.length);
  let sum = 0;
  for (let i = 0; i < xs.length; i++) {
    e[i] = xs[i] === -Infinity ? 0 : Math.exp(xs[i] - top);
    sum += e[i];
  }
  for (let i = 0; i < e.length; i++) e[i] /= sum;
  return e;
}

function filtered(logits, temperature, topK, topP) {
  // softmax(logits / T), then top-k, then top-p; T = 0 is greedy (gpt.insight.next_token_view)
  const V = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    const onehot = new Float64Array(V);
    onehot[best] = 1;
    return { tempered: onehot, probs: onehot };
  }
  const scaled = new Float64Array(V);
  for (let i = 0; i < V; i++) scaled[i] = logits[i] / Math.max(temperature, 1e-8);
  const tempered = softmax(scaled);
  let probs = tempered;
  if (topK && topK < V) {
    const kth = Float64Array.from(scaled).sort()[V - topK];  // the k-th largest; ties with it stay
    probs = softmax(scaled.map((x) => (x < kth ? -Infinity : x)));
  }
  if (topP !== null && topP < 1) {
    const order = [];
    for (let i = 0; i < V; i++) if (probs[i] > 0) order.push(i);  // after top-k, only k to sort
    order.sort((a, b) => probs[b] - probs[a]);
    const nucleus = new Float64Array(V);
    let before = 0;
    for (const i of order) {
      if (before >= topP) break;  // the mass ranked above reached top-p: this token and the rest are cut
      nucleus[i] = probs[i];  // the first always stays
      before += probs[i];
    }
    for (let i = 0; i < V; i++) nucleus[i] /= before;
    probs = nucleus;
  }
  return { tempered, probs };
}

function knobs(data, moved) {
  // the sliders as they are now: the one being moved (`moved`: its key and value), the others' number
  // boxes; the server's values where the page has none
  const read = (key) => {
    const box = document.querySelector(`#${KNOBS[key]} input[type=number]`);
    const v = moved && moved.key === key ? moved.value : box ? parseFloat(box.value) : NaN;
    return Number.isFinite(v) ? v : data.knobs[key];
  };
  const t = read("temperature"), k = read("top_k"), p = read("top_p");
  if (!(t >= 0) || !(k >= 0) || !Number.isInteger(k) || !(p > 0) || p > 1) return null; // the server says why
  return { temperature: t, top_k: k || null, top_p: p < 1 ? p : null };
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function unpack(data) {
  // the logits (float32, base64) and the T = 1 distribution, once per prompt
  if (!data.unpacked) {
    const bytes = Uint8Array.from(atob(data.logits), (c) => c.charCodeAt(0));
    const logits = new Float32Array(bytes.buffer);
    data.unpacked = { logits, raw: filtered(logits, 1, null, null).probs };
  }
  return data.unpacked;
}

function svg(data, knob) {
  // gpt.plots.next_token_figure's bars: drawn from (blue), cut by the filters (grey, hatched, at their
  // tempered probability), the model's own T = 1 distribution (outline); the percentages above
  const { logits, raw } = unpack(data);
  const { tempered, probs } = filtered(logits, knob.temperature, knob.top_k, knob.top_p);
  const [sampledName, cutName, ownName] = data.series;
  const rows = data.bars.map((b) => ({ ...b, raw: raw[b.id], prob: probs[b.id], tempered: tempered[b.id],
                                        cut: probs[b.id] === 0 && tempered[b.id] > 0 }));
  const t = knob.temperature === 0 ? "T = 0 (greedy)" : `T = ${knob.temperature}`;
  const title = `What comes next? ${t} · ${knob.top_k ? `top-k ${knob.top_k}` : "top-k off"} · ` +
                (knob.top_p ? `top-p ${knob.top_p}` : "top-p off");
  const upright = rows.every((r) => [...r.label].length <= 3);
  const step = 48, plotH = 380, left = 78, top = 92;
  const bottom = upright ? 44 : 26 + 9 * Math.max(1, ...rows.map((r) => [...r.label].length));
  const width = left + step * Math.max(rows.length, 1) + 24, height = top + plotH + bottom;
  const ymax = Math.min(1.08, 1.18 * Math.max(0.05, ...rows.flatMap((r) => [r.prob, r.raw, r.cut ? r.tempered : 0])));
  const y = (p) => top + plotH * (1 - Math.min(p, ymax) / ymax);
  const out = [`<svg xmlns="${SVG_NS}" viewBox="0 0 ${width} ${height}" width="${width}" role="img" ` +
               `style="max-width:100%;height:auto;font-family:inherit" aria-label="${esc(title)}">`,
               `<defs><pattern id="nt-hatch" width="8" height="8" patternUnits="userSpaceOnUse" ` +
               `patternTransform="rotate(45)"><rect width="8" height="8" fill="${data.colors.cut}"/>` +
               `<line x1="0" y1="0" x2="0" y2="8" stroke="#808080" stroke-width="2"/></pattern></defs>`,
               `<text x="${width / 2}" y="28" text-anchor="middle" font-size="19" font-weight="bold" ` +
               `fill="currentColor">${esc(title)}</text>`];
  [[sampledName, `fill="${data.colors.sampled}"`], [cutName, 'fill="url(#nt-hatch)"'],
   [ownName, 'fill="none" stroke="currentColor" stroke-width="1.6"']].forEach(([name, swatch], k) => {
    const ly = 44 + 16 * k;
    out.push(`<rect x="${width - 330}" y="${ly}" width="12" height="12" ${swatch}/>` +
             `<text x="${width - 312}" y="${ly + 11}" font-size="13" fill="currentColor">${esc(name)}</text>`);
  });
  const tick = [0.05, 0.1, 0.2, 0.25].find((s) => ymax / s <= 6);
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="currentColor"/>` +
           `<line x1="${left}" y1="${top + plotH}" x2="${width - 20}" y2="${top + plotH}" stroke="currentColor"/>`);
  for (let k = 0; k * tick <= ymax + 1e-9; k++) {
    const ty = y(k * tick).toFixed(1);
    out.push(`<line x1="${left - 5}" y1="${ty}" x2="${left}" y2="${ty}" stroke="currentColor"/>` +
             `<text x="${left - 8}" y="${(+ty + 5).toFixed(1)}" text-anchor="end" font-size="14" ` +
             `fill="currentColor">${Math.round(100 * k * tick)}%</text>`);
  }
  out.push(`<text transform="translate(20 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="16" ` +
           `fill="currentColor">probability</text>`);
  const barW = 0.7 * step;
  rows.forEach((r, i) => {
    const x0 = (left + step * i + (step - barW) / 2).toFixed(1), cx = (left + step * i + step / 2).toFixed(1);
    const [series, p] = r.cut ? [cutName, r.tempered] : [sampledName, r.prob];
    const tip = `${r.label}\n${series}: ${(100 * p).toFixed(1)}%\nat T = 1, no filter: ${(100 * r.raw).toFixed(1)}%`;
    const fill = r.cut ? 'fill="url(#nt-hatch)" stroke="#808080"' : `fill="${data.colors.sampled}"`;
    out.push(`<g class="nt-bar" data-token="${esc(r.label)}" data-id="${r.id}" data-series="${esc(series)}" ` +
             `data-p="${p}" data-prob="${r.prob}" data-raw="${r.raw}"><title>${esc(tip)}</title>` +
             `<rect x="${x0}" y="${y(p).toFixed(1)}" width="${barW.toFixed(1)}" height="${(y(0) - y(p)).toFixed(1)}" ${fill}/>` +
             `<rect x="${x0}" y="${y(r.raw).toFixed(1)}" width="${barW.toFixed(1)}" ` +
             `height="${(y(0) - y(r.raw)).toFixed(1)}" fill="none" stroke="currentColor" stroke-width="1.6"/>`);
    if (r.prob >= 0.01) {
      out.push(`<text x="${cx}" y="${(y(Math.max(r.prob, r.raw)) - 6).toFixed(1)}" text-anchor="middle" ` +
               `font-size="13" fill="currentColor">${Math.round(100 * r.prob)}%</text>`);
    }
    const ly = top + plotH + 22;
    out.push(upright
      ? `<text x="${cx}" y="${ly + 4}" text-anchor="middle" font-size="18" fill="currentColor" ` +
        `xml:space="preserve">${esc(r.label)}</text>`
      : `<text transform="translate(${cx} ${ly - 8}) rotate(-60)" text-anchor="end" font-size="13" ` +
        `fill="currentColor" xml:space="preserve">${esc(r.label)}</text>`);
    out.push("</g>");
  });
  out.push("</svg>");
  return out.join("");
}

let shown = { value: undefined, data: null };  // the server's last value, parsed once

function draw(moved) {
  const box = element.querySelector(".nt-chart");
  if (!box) return;
  if (shown.value !== props.value) {
    let data = null;
    try {
      data = JSON.parse(props.value || "null");
    } catch (err) {
      data = null;
    }
    shown = { value: props.value, data };
  }
  const data = shown.data;
  if (!data || !data.logits) {
    box.innerHTML = "";
    return;
  }
  const knob = knobs(data, moved);
  if (knob) box.innerHTML = svg(data, knob);
}

watch("value", () => draw(null));
window.__nextTokenRedraw = draw;  // the chart on the page now (a remounted one replaces the one before)
if (!window.__nextTokenListening) {  // one listener for the page, however often the chart mounts
  window.__nextTokenListening = true;
  document.addEventListener("input", (event) => {  // a slider dragged, or its number box typed into
    const key = Object.keys(KNOBS).find((k) => event.target.closest && event.target.closest(`#${KNOBS[k]}`));
    if (key) window.__nextTokenRedraw({ key, value: parseFloat(event.target.value) });
  });
}
draw(null);
