/**
 * Operator robustness (issue 15 item 11): installing needs nothing but the npm registry, without npm warning on
 * every run that a project config is unknown. onnxruntime-node's install script (which fetches the CUDA provider
 * from NuGet) is denied through package.json's allowScripts, the policy npm keeps honouring, not an .npmrc key.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const REPO = path.join(__dirname, '..');

test('npm reads the project config without an unknown-config warning, and the NuGet download stays denied', () => {
  const r = spawnSync('npm', ['pkg', 'get', 'name'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  expect(r.status).toBe(0);
  expect(r.stderr).not.toMatch(/Unknown (project|env|user) config/);
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  expect(pkg.allowScripts).toEqual({ 'onnxruntime-node': false });
});
