import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { ChartColumns } from '../lib/query.ts';

/** The series colours, in order; the stylesheet's `.swatch.s0`, `.s1`, `.s2` use the same (a canvas cannot read CSS). */
export const PALETTE = ['#1f4e99', '#b5430b', '#2e7d32'] as const;

export interface Series {
  label: string;
  /** Steps suit a balance (it holds between entries); lines suit flows. */
  stepped?: boolean;
}

const utc = (seconds: number) => uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC');

/**
 * A uPlot chart in an element with role `img` named by `label` (a canvas says nothing to a screen reader; the
 * label and the table beside it do). Every interval is a point, so empty ones are drawn too.
 */
export function Chart({
  label,
  columns,
  series,
}: {
  label: string;
  columns: ChartColumns;
  series: Series[];
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    const height = 220;
    const plot = new uPlot(
      {
        width: Math.max(320, element.clientWidth),
        height,
        tzDate: utc,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true } },
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: PALETTE[i % PALETTE.length],
            width: 2,
            points: { show: columns[0].length <= 60 },
            ...(s.stepped ? { paths: uPlot.paths.stepped?.({ align: 1 }) } : {}),
          })),
        ],
        axes: [{ stroke: '#333' }, { stroke: '#333' }],
      },
      columns as uPlot.AlignedData,
      element,
    );
    const resize = new ResizeObserver(() =>
      plot.setSize({ width: Math.max(320, element.clientWidth), height }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [columns, series]);
  return (
    <figure class="chart">
      <div ref={ref} role="img" aria-label={label} />
      <figcaption>
        {series.map((s, i) => (
          <span key={s.label} class="legend">
            <span class={`swatch s${i}`} aria-hidden="true" />
            {s.label}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
