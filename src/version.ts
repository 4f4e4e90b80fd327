import * as fs from 'node:fs';
import * as path from 'node:path';

/** The graft package root (works from src/ under ts-jest and from dist/src/ when built). */
export const PACKAGE_ROOT: string = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('graft: package.json not found above ' + __dirname);
    dir = up;
  }
  return dir;
})();

/** graft's own version, from package.json. */
export const GRAFT_VERSION: string = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version;
