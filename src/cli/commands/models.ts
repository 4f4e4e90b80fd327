import { Command } from 'commander';
import { architectureMultiplyAdds } from '../../models/multiply-adds';
import { listArchitectures } from '../../models/registry';
import { ArchitectureSpec } from '../../models/spec';

/** Renders rows as a left-aligned text table (numbers right-aligned). */
export function textTable(header: string[], rows: string[][], rightAligned: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (rightAligned.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Multiply-adds for humans: `15.47 G`, `312 M`. */
export function formatMultiplyAdds(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} M`;
}

/** A parameter count for humans (`138,357,544`), or `-` when it depends on configuration. */
export function formatCount(n: number | undefined): string {
  return n === undefined ? '-' : n.toLocaleString('en-US');
}

/** The registry as `graft models --json` prints it (multiply-adds are counted over each model built at its default size). */
export function architectureRows(specs: ArchitectureSpec[] = listArchitectures()) {
  return specs.map((s) => ({
    name: s.name,
    keras: s.keras,
    defaultInputSize: s.defaultInputSize,
    minInputSize: s.minInputSize,
    paramsWithTop: s.params?.top ?? null,
    paramsWithoutTop: s.params?.notop ?? null,
    preprocessing: s.preprocessing,
    imagenetWeights: s.imagenet !== null,
    // From the layers' shapes at the default size with the top, so a new family needs no figure typed in.
    multiplyAdds: architectureMultiplyAdds({ arch: s.name }),
  }));
}

/** `graft models`: the architectures graft builds, with Keras's sizes, parameter counts and preprocessing. */
export function modelsCommand(): Command {
  return new Command('models')
    .description('list the architectures: default and minimum input size, parameters with and without top, multiply-adds per image, preprocessing')
    .option('--json', 'print the list as JSON')
    .action((opts: { json?: boolean }) => {
      const rows = architectureRows();
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      const table = textTable(
        ['name', 'keras', 'input', 'min', 'params (top)', 'params (no top)', 'mult-adds', 'preprocessing', 'imagenet'],
        rows.map((r) => [
          r.name,
          r.keras,
          String(r.defaultInputSize),
          String(r.minInputSize),
          formatCount(r.paramsWithTop ?? undefined),
          formatCount(r.paramsWithoutTop ?? undefined),
          formatMultiplyAdds(r.multiplyAdds),
          r.preprocessing,
          r.imagenetWeights ? 'yes' : 'no',
        ]),
        [2, 3, 4, 5, 6],
      );
      process.stdout.write(table + '\n');
    });
}
