/**
 * Charts as server-rendered inline SVG: no chart library, no script. Every mark
 * carries its data (`data-series`, `data-label`, `data-value`) and a <title> tooltip,
 * so what a chart draws can be read back from the page.
 */

export interface Series {
  key: string;
  label: string;
  /** CSS class of its marks (s-clean, s-messy, s-failed, s-a, s-b). */
  cls: string;
}

export interface Column {
  label: string;
  /** null: nothing to show that day (no push, no clean fix): no mark, not a zero. */
  values: Record<string, number | null>;
}

const W = 600;
const H = 220;
const PAD = { left: 48, right: 10, top: 10, bottom: 34 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

const r2 = (n: number) => Math.round(n * 100) / 100;
/** A value as a script or test reads it: rounded for the float's noise only (a $0.004 cost is not 0). */
const exact = (n: number) => Math.round(n * 1e6) / 1e6;

export function Legend(props: { series: Series[] }) {
  return (
    <div class="legend">
      {props.series.map((s) => (
        <span>
          <i class={s.cls}></i>
          {s.label}
        </span>
      ))}
    </div>
  );
}

/**
 * Columns over a category axis (days): stacked (counts that add up) or grouped
 * (values side by side). `format` writes values in tooltips and on the y axis.
 */
export function ColumnChart(props: { id: string; title: string; columns: Column[]; series: Series[]; mode: 'stacked' | 'grouped'; format?: (v: number) => string }) {
  const { columns, series, mode } = props;
  const fmt = props.format ?? ((v: number) => String(r2(v)));
  const totals = columns.map((c) => (mode === 'stacked' ? series.reduce((a, s) => a + (c.values[s.key] ?? 0), 0) : Math.max(0, ...series.map((s) => c.values[s.key] ?? 0))));
  const max = niceMax(Math.max(0, ...totals));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = columns.length ? plotW / columns.length : plotW;
  const barW = Math.max(2, Math.min(40, slot * 0.7));
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const labelEvery = Math.max(1, Math.ceil(columns.length / 10));
  return (
    <figure class="chart-box">
      <svg id={props.id} class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <title>{props.title}</title>
        <line class="axis" x1={PAD.left} y1={PAD.top + plotH} x2={W - PAD.right} y2={PAD.top + plotH} />
        <line class="axis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={PAD.top + plotH} />
        <text x={PAD.left - 6} y={PAD.top + 10} text-anchor="end">
          {fmt(max)}
        </text>
        <text x={PAD.left - 6} y={PAD.top + plotH} text-anchor="end">
          0
        </text>
        {columns.map((c, i) => {
          const x0 = PAD.left + i * slot + (slot - barW) / 2;
          let acc = 0;
          const groupW = barW / Math.max(1, series.length);
          return (
            <g data-label={c.label}>
              {series.map((s, k) => {
                if (c.values[s.key] === null) return null;
                const v = c.values[s.key] ?? 0;
                const top = mode === 'stacked' ? y(acc + v) : y(v);
                const height = mode === 'stacked' ? y(acc) - y(acc + v) : y(0) - y(v);
                const x = mode === 'stacked' ? x0 : x0 + k * groupW;
                acc += v;
                return (
                  <rect class={s.cls} x={r2(x)} y={r2(top)} width={r2(mode === 'stacked' ? barW : groupW)} height={r2(Math.max(0, height))} data-series={s.key} data-label={c.label} data-value={exact(v)}>
                    <title>{`${c.label} ${s.label}: ${fmt(v)}`}</title>
                  </rect>
                );
              })}
              {i % labelEvery === 0 ? (
                <text x={r2(PAD.left + i * slot + slot / 2)} y={H - PAD.bottom + 16} text-anchor="middle">
                  {c.label.length === 10 ? c.label.slice(5) : c.label}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <Legend series={series} />
    </figure>
  );
}

/** Horizontal bars with their labels: a ranking (top fingerprints, tokens per stage). */
export function BarList(props: { id: string; title: string; bars: Array<{ label: string; value: number; href?: string; note?: string }>; format?: (v: number) => string }) {
  const fmt = props.format ?? ((v: number) => String(r2(v)));
  const rowH = 22;
  const labelW = 220;
  const valueW = 90;
  const height = Math.max(rowH, props.bars.length * rowH) + 4;
  const max = Math.max(0, ...props.bars.map((b) => b.value)) || 1;
  const plotW = W - labelW - valueW;
  return (
    <svg id={props.id} class="chart" viewBox={`0 0 ${W} ${height}`} role="img" aria-label={props.title}>
      <title>{props.title}</title>
      {props.bars.map((b, i) => {
        const label = b.label.length > 32 ? `${b.label.slice(0, 31)}…` : b.label;
        const text = (
          <text x={labelW - 8} y={i * rowH + 15} text-anchor="end">
            {label}
          </text>
        );
        return (
          <g data-label={b.label}>
            {b.href ? <a href={b.href}>{text}</a> : text}
            <rect class="s-a" x={labelW} y={i * rowH + 4} width={r2((b.value / max) * plotW)} height={rowH - 8} data-series="value" data-label={b.label} data-value={exact(b.value)}>
              <title>{`${b.label}: ${fmt(b.value)}${b.note ? ` (${b.note})` : ''}`}</title>
            </rect>
            <text x={r2(labelW + (b.value / max) * plotW + 6)} y={i * rowH + 15}>
              {fmt(b.value)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
