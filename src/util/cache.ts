import * as os from 'node:os';
import * as path from 'node:path';

/** Where downloaded weights are kept: `GRAFT_CACHE`, else `$XDG_CACHE_HOME/graft`, else `~/.cache/graft`. */
export function cacheDir(): string {
  if (process.env.GRAFT_CACHE) return path.resolve(process.env.GRAFT_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'graft');
}
