/**
 * Child process of the `evaluate` benchmark: how long a cold `evaluate` takes to score its first batch, from the
 * start of the process (module loading, opening and checking the dataset, the engine's session, the first decode and
 * forward pass). Usage: node dist/bench/evaluate-first-batch.js <model folder> <data> <verify>. Prints one JSON line.
 */
import { evaluate } from '../src/eval/evaluate';

async function main(): Promise<void> {
  const [model, data, verify] = process.argv.slice(2);
  let first: number | undefined;
  const report = await evaluate({
    model,
    data,
    verify: verify as 'header',
    log: null,
    onProgress: () => {
      first ??= performance.now();
    },
  });
  // performance.now() counts from the start of the process.
  process.stdout.write(JSON.stringify({ first_batch_s: first! / 1000, total_s: performance.now() / 1000, images: report.data.samples }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.message : err}\n`);
  process.exitCode = 1;
});
