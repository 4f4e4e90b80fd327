import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { AddressInfo } from 'node:net';
import { cachedPath, fetchCached, imagenetFile, resolveWeightsFile } from '../src/models/weights';
import { getArchitecture, listArchitectures } from '../src/models/registry';
import { tmpDir } from './helpers/tmp';

describe('weights download and cache', () => {
  const root = tmpDir();
  const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
  const md5 = createHash('md5').update(payload).digest('hex');
  let requests: string[] = [];
  let server: http.Server;
  let base = '';
  const savedCache = process.env.GRAFT_CACHE;

  beforeAll(async () => {
    process.env.GRAFT_CACHE = path.join(root, 'cache');
    server = http.createServer((req, res) => {
      requests.push(req.url!);
      if (req.url === '/moved/w.h5') {
        res.writeHead(302, { location: '/files/moved.h5' });
        res.end();
      } else if (req.url!.startsWith('/files/')) {
        res.writeHead(200, { 'content-length': payload.length });
        res.end(payload);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    if (savedCache === undefined) delete process.env.GRAFT_CACHE;
    else process.env.GRAFT_CACHE = savedCache;
  });
  beforeEach(() => (requests = []));

  test('downloads into GRAFT_CACHE/keras with progress, verifies md5, then reuses the cached file', async () => {
    const seen: number[] = [];
    const file = await fetchCached({ url: `${base}/files/a.h5`, md5, onProgress: (received, total) => seen.push(received / (total ?? NaN)) });
    expect(file).toBe(path.join(root, 'cache', 'keras', 'a.h5'));
    expect(fs.readFileSync(file).equals(payload)).toBe(true);
    expect(seen.at(-1)).toBe(1);
    expect(requests).toEqual(['/files/a.h5']);
    expect(await fetchCached({ url: `${base}/files/a.h5`, md5 })).toBe(file);
    expect(requests).toEqual(['/files/a.h5']);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['a.h5']);
  });

  test('an md5 mismatch is an error and leaves nothing in the cache; a corrupted cached file is fetched again', async () => {
    await expect(fetchCached({ url: `${base}/files/b.h5`, md5: '0'.repeat(32) })).rejects.toThrow(
      new RegExp(`md5 is ${md5}, expected 0{32}.*place it at .*b\\.h5`),
    );
    expect(fs.existsSync(cachedPath(`${base}/files/b.h5`))).toBe(false);
    expect(fs.readdirSync(path.join(root, 'cache', 'keras')).filter((f) => f.includes('b.h5'))).toEqual([]);

    fs.writeFileSync(cachedPath(`${base}/files/c.h5`), 'damaged');
    const file = await fetchCached({ url: `${base}/files/c.h5`, md5 });
    expect(fs.readFileSync(file).equals(payload)).toBe(true);
    expect(requests).toEqual(['/files/b.h5', '/files/c.h5']);
  });

  test('follows redirects; HTTP errors and unreachable hosts say which file to place where', async () => {
    expect(fs.readFileSync(await fetchCached({ url: `${base}/moved/w.h5`, md5 })).equals(payload)).toBe(true);
    await expect(fetchCached({ url: `${base}/missing.h5` })).rejects.toThrow(/cannot download .*missing\.h5 \(HTTP 404\); to work offline, .*place it at .*keras\/missing\.h5/);
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(fetchCached({ url: `http://127.0.0.1:${port}/resnet50_notop.h5`, md5 })).rejects.toThrow(
      new RegExp(`ECONNREFUSED.*place it at .*resnet50_notop\\.h5 \\(md5 ${md5}\\)`),
    );
  });

  test('imagenet resolves to the Keras file of each architecture; a cached copy with the right md5 is used offline', async () => {
    for (const spec of listArchitectures().filter((s) => s.imagenet)) {
      for (const top of [true, false]) {
        const f = imagenetFile(spec, top);
        if (/^(vgg|resnet|inception_v3|xception|densenet|inception_resnet)/.test(spec.name)) {
          expect(f.url).toMatch(new RegExp(`^https://storage.googleapis.com/tensorflow/keras-applications/.*${top ? 'kernels' : 'notop'}\\.h5$`));
          expect(f.md5).toMatch(/^[0-9a-f]{32}$/);
        } else {
          // The mobile families' files are named their own way; Keras checks MobileNet V1 by sha256, V2 not at all.
          expect(f.url).toMatch(/^https:\/\/storage.googleapis.com\/(tensorflow\/)?keras-applications\/.*\.h5$/);
          expect(/no_?top/.test(f.url)).toBe(!top);
          if (!spec.name.startsWith('mobilenet_v2')) expect(f.md5 ?? f.sha256).toMatch(/^[0-9a-f]{32}([0-9a-f]{32})?$/);
        }
      }
    }
    const spec = getArchitecture('xception');
    const { url } = imagenetFile(spec, false);
    const placed = cachedPath(url);
    fs.mkdirSync(path.dirname(placed), { recursive: true });
    fs.writeFileSync(placed, payload);
    const realSpec = { ...spec, imagenet: { ...spec.imagenet!, notop: { url, md5 } } };
    expect(await resolveWeightsFile('imagenet', { spec: realSpec, includeTop: false })).toBe(placed);
    expect(() => imagenetFile(getArchitecture('simple_cnn'), false)).toThrow(/simple_cnn has no ImageNet weights/);
  });
});
