/**
 * `npm run bench`: runs every benchmark section in one invocation (so ratios compare like with like on a noisy
 * machine) and prints one Markdown report; `--only name,...` picks sections, `--out file.md` also writes it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { SECTIONS } from './sections';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined;
  const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : undefined;
  const unknown = (only ?? []).filter((n) => !SECTIONS.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown bench section ${unknown.join(', ')}; valid: ${SECTIONS.map((s) => s.name).join(', ')}`);
  const cpu = os.cpus();
  const parts = [`# graft benchmarks\n\nMachine: ${cpu.length} x ${cpu[0]?.model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString()}\n`];
  const started = process.hrtime.bigint();
  for (const section of SECTIONS) {
    if (only && !only.includes(section.name)) continue;
    process.stderr.write(`bench: ${section.name}...\n`);
    const text = await section.run();
    process.stdout.write(text + '\n');
    parts.push(text);
  }
  const total = `Total bench time ${(Number(process.hrtime.bigint() - started) / 60e9).toFixed(1)} min.\n`;
  process.stdout.write(total);
  parts.push(total);
  if (out) fs.writeFileSync(out, parts.join('\n'));
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : err}\n`);
  process.exitCode = 1;
});
