/**
 * `graft serve`: a small static file server on the loopback interface, enough to view a `graft export --web` site
 * (browsers refuse to load a model from a page opened as a file). Any static server works as well.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { GraftError } from '../errors';

/** Content types of the files a site holds; anything else is sent as bytes. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** Options of `serveStatic`. */
export interface ServeOptions {
  /** Port (default 8080; 0 picks a free one). */
  port?: number;
  /** Address to listen on (default 127.0.0.1: only this machine can connect). */
  host?: string;
}

/** A running server. */
export interface StaticServer {
  /** The address to open, e.g. http://127.0.0.1:8080/. */
  url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** Serves the files under `root` (folders by their index.html) until closed. */
export async function serveStatic(root: string, options: ServeOptions = {}): Promise<StaticServer> {
  const stat = fs.statSync(root, { throwIfNoEntry: false });
  if (!stat) throw new GraftError(`${root} does not exist; pass the folder graft export --web wrote.`);
  if (!stat.isDirectory()) throw new GraftError(`${root} is a file; pass the folder graft export --web wrote.`);
  const base = path.resolve(root);
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  const server = http.createServer((req, res) => {
    const send = (status: number, text: string) => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET and HEAD\n');
    let rel: string;
    try {
      rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return send(400, 'bad path\n');
    }
    let file = path.join(base, rel);
    // path.join has already resolved any `..`: anything outside the root is refused.
    if (file !== base && !file.startsWith(base + path.sep)) return send(403, 'outside the served folder\n');
    if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
      // The page's relative links (model/, tfjs/) only resolve inside the folder from a URL ending in a slash.
      if (!rel.endsWith('/')) {
        res.writeHead(301, { Location: `${new URL(req.url ?? '/', 'http://x').pathname}/` });
        return res.end();
      }
      file = path.join(file, 'index.html');
    }
    const info = fs.statSync(file, { throwIfNoEntry: false });
    if (!info?.isFile()) return send(404, `not found: ${rel}\n`);
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': info.size,
      // A re-export must show on reload, not a cached model.
      'Cache-Control': 'no-cache',
    });
    if (req.method === 'HEAD') return res.end();
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new GraftError(`port ${port} on ${host} is in use; pass another --port (0 picks a free one).`)
          : new GraftError(`cannot listen on ${host}:${port} (${err.message}); pass another --port.`, { cause: err }),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
