import { Command } from 'commander';
import { positiveInt } from '../../errors';
import { serveStatic } from '../../web/serve';
import { globals } from '../common';

/** `graft serve <folder>`: serves a `graft export --web` site on 127.0.0.1 until Ctrl-C. */
export function serveCommand(): Command {
  return new Command('serve')
    .description('serve a folder (a graft export --web site) on 127.0.0.1 for viewing in a browser, until Ctrl-C')
    .argument('<folder>', 'the site folder graft export --web wrote')
    .option('--port <n>', 'port to listen on (0 picks a free one)', '8080')
    .action(async (folder: string, opts: { port: string }, cmd: Command) => {
      const port = opts.port === '0' ? 0 : positiveInt('--port', opts.port);
      const server = await serveStatic(folder, { port });
      if (!globals(cmd).quiet) process.stdout.write(`serving ${folder} at ${server.url} (only this machine can connect); Ctrl-C stops\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
