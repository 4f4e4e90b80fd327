/*
 * The page written by `graft export --web`: loads model/ (a graft model folder: stock tfjs model.json + shards,
 * and graft.json for input size, preprocessing and class names) with the stock tfjs bundle, and classifies images
 * that are dropped, picked or taken with the camera. Image preparation is graft-pixels.js.
 *
 * `?backend=webgl|wasm|cpu` picks a tfjs backend; by default the first that starts of webgl (unless it is drawn in
 * software), wasm and cpu.
 * `window.graftPage` exposes `ready` (a promise of the model description) and `results` (every classification so
 * far, with all class scores) for scripts and tests.
 */
(function () {
  'use strict';
  /* global tf, graftPixels */

  var BACKENDS = ['webgl', 'wasm', 'cpu'];
  var MODEL_DIR = 'model/';
  var $ = function (id) { return document.getElementById(id); };
  var state = { model: null, meta: null, topK: 5, backend: null };
  var page = { results: [], ready: null };
  window.graftPage = page;

  function setStatus(text, kind) {
    var el = $('status');
    el.textContent = text;
    el.dataset.state = kind;
  }

  async function fetchJson(url) {
    var res = await fetch(url);
    if (!res.ok) throw new Error(url + ': HTTP ' + res.status);
    return res.json();
  }

  /**
   * WebGL drawn in software (SwiftShader, llvmpipe: no GPU, or a headless browser) compiles its shaders for seconds
   * and then runs slower than wasm, so wasm goes first there.
   */
  function defaultBackends() {
    try {
      var canvas = document.createElement('canvas');
      var gl = canvas.getContext('webgl2') || canvas.getContext('webgl');
      if (!gl) return ['wasm', 'cpu'];
      var info = gl.getExtension('WEBGL_debug_renderer_info');
      var renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
      var lose = gl.getExtension('WEBGL_lose_context');
      if (lose) lose.loseContext();
      return /swiftshader|llvmpipe|softpipe|software|basic render/i.test(renderer) ? ['wasm', 'webgl', 'cpu'] : BACKENDS;
    } catch {
      return BACKENDS;
    }
  }

  /** The first backend of `wanted` that initialises (tfjs falls back silently otherwise, which hides which one runs). */
  async function pickBackend(wanted) {
    if (tf.wasm && tf.wasm.setWasmPaths) tf.wasm.setWasmPaths(new URL('tfjs/', document.baseURI).href);
    for (var i = 0; i < wanted.length; i++) {
      try {
        if (await tf.setBackend(wanted[i])) {
          await tf.ready();
          return wanted[i];
        }
      } catch (err) {
        console.warn('tfjs backend ' + wanted[i] + ' did not start:', err);
      }
    }
    throw new Error('no tfjs backend started (tried ' + wanted.join(', ') + ')');
  }

  function describe(meta) {
    var s = meta.inputShape;
    var colour = s[2] === 1 ? 'grey' : 'RGB';
    return meta.architecture + ', ' + meta.classNames.length + ' classes, input ' + s[1] + '×' + s[0] + ' ' + colour +
      ', preprocessing "' + meta.preprocessing + '"';
  }

  async function load() {
    if (location.protocol === 'file:') {
      throw new Error('browsers do not let a page opened from a file load its model; serve this folder, e.g. graft serve <this folder>');
    }
    var requested = new URLSearchParams(location.search).get('backend');
    if (requested && BACKENDS.indexOf(requested) < 0) throw new Error('?backend=' + requested + ' is not one of ' + BACKENDS.join(', '));
    var meta = await fetchJson(MODEL_DIR + 'graft.json');
    if (graftPixels.MODES.indexOf(meta.preprocessing) < 0) throw new Error('graft.json names preprocessing ' + meta.preprocessing + ', which this page does not know');
    state.backend = await pickBackend(requested ? [requested] : defaultBackends());
    state.model = await tf.loadLayersModel(MODEL_DIR + 'model.json');
    state.meta = meta;
    state.topK = Math.min(5, meta.classNames.length);
    $('classes').textContent = meta.classNames.length + ' classes: ' + meta.classNames.join(', ');
    $('about').textContent = describe(meta) + '. tfjs ' + tf.version.tfjs + ' on the ' + state.backend + ' backend.';
    setStatus('Ready (' + state.backend + ' backend). Drop or choose images.', 'ready');
    if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) $('camera-start').hidden = false;
    return { backend: state.backend, meta: meta };
  }

  /** Decoded RGBA pixels of an image source at its own size (EXIF orientation applied by the browser). */
  function pixelsOf(source, width, height) {
    var canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    var ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(source, 0, 0);
    return ctx.getImageData(0, 0, width, height).data;
  }

  async function classify(rgba, width, height) {
    var meta = state.meta;
    var shape = meta.inputShape;
    var input = graftPixels.modelInput(rgba, width, height, shape, meta.preprocessing);
    var out = tf.tidy(function () { return state.model.predict(tf.tensor4d(input, [1, shape[0], shape[1], shape[2]])); });
    try {
      return Array.from(await out.data());
    } finally {
      out.dispose();
    }
  }

  function topOf(scores) {
    var order = scores.map(function (s, i) { return i; });
    order.sort(function (a, b) { return scores[b] - scores[a] || a - b; });
    return order.slice(0, state.topK).map(function (i) { return { label: state.meta.classNames[i], score: scores[i] }; });
  }

  /** Cards of one pick or drop stay in their order; the newest batch goes on top. */
  function newBatch() {
    var batch = document.createElement('div');
    batch.className = 'batch';
    $('results').prepend(batch);
    return batch;
  }

  function showResult(batch, name, thumbUrl, top, error) {
    var card = document.createElement('article');
    card.className = 'card';
    var img = document.createElement('img');
    img.src = thumbUrl;
    img.alt = name;
    card.appendChild(img);
    var body = document.createElement('div');
    var title = document.createElement('h2');
    title.textContent = name;
    body.appendChild(title);
    if (error) {
      var p = document.createElement('p');
      p.className = 'error';
      p.textContent = error;
      body.appendChild(p);
    } else {
      var list = document.createElement('ol');
      top.forEach(function (t) {
        var li = document.createElement('li');
        var label = document.createElement('span');
        label.className = 'label';
        label.textContent = t.label;
        var bar = document.createElement('span');
        bar.className = 'bar';
        var fill = document.createElement('span');
        fill.style.width = (100 * Math.max(0, Math.min(1, t.score))).toFixed(1) + '%';
        bar.appendChild(fill);
        var score = document.createElement('span');
        score.className = 'score';
        score.textContent = t.score.toFixed(4);
        li.append(label, bar, score);
        list.appendChild(li);
      });
      body.appendChild(list);
    }
    card.appendChild(body);
    batch.appendChild(card);
  }

  /** Decodes a file to an image source with EXIF orientation applied: an ImageBitmap, or an <img> where that fails. */
  async function decode(file, url) {
    if (typeof createImageBitmap === 'function') {
      try {
        return await createImageBitmap(file, { imageOrientation: 'from-image', premultiplyAlpha: 'none' });
      } catch (err) {
        console.warn('createImageBitmap failed, decoding with an <img> instead:', err);
      }
    }
    var img = new Image();
    img.src = url;
    await img.decode();
    return img;
  }

  async function classifyFile(batch, file) {
    var url = URL.createObjectURL(file);
    try {
      var source = await decode(file, url);
      var width = source.naturalWidth || source.width;
      var height = source.naturalHeight || source.height;
      var scores = await classify(pixelsOf(source, width, height), width, height);
      if (source.close) source.close();
      var top = topOf(scores);
      page.results.push({ name: file.name, scores: scores, top: top });
      showResult(batch, file.name, url, top);
    } catch (err) {
      page.results.push({ name: file.name, error: String(err && err.message || err) });
      showResult(batch, file.name, url, null, 'Could not classify this file: ' + (err && err.message || err));
    }
  }

  async function classifyFiles(files) {
    if (!state.model) return;
    var images = Array.prototype.filter.call(files, function (f) { return !f.type || f.type.indexOf('image/') === 0; });
    setStatus('Classifying ' + images.length + ' image' + (images.length === 1 ? '' : 's') + '…', 'busy');
    var batch = newBatch();
    for (var i = 0; i < images.length; i++) await classifyFile(batch, images[i]);
    setStatus('Ready (' + state.backend + ' backend). ' + page.results.length + ' classified so far.', 'ready');
  }

  function wireInputs() {
    var drop = $('drop');
    $('files').addEventListener('change', function (e) {
      classifyFiles(e.target.files).then(function () { e.target.value = ''; });
    });
    ['dragenter', 'dragover'].forEach(function (type) {
      drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add('over'); });
    });
    ['dragleave', 'drop'].forEach(function (type) {
      drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.remove('over'); });
    });
    drop.addEventListener('drop', function (e) { classifyFiles(e.dataTransfer.files); });

    var stream = null;
    $('camera-start').addEventListener('click', async function () {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
        $('video').srcObject = stream;
        $('camera').hidden = false;
      } catch (err) {
        setStatus('The camera is not available: ' + (err && err.message || err), 'ready');
      }
    });
    $('camera-stop').addEventListener('click', function () {
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null;
      $('camera').hidden = true;
    });
    $('camera-shot').addEventListener('click', async function () {
      var video = $('video');
      if (!video.videoWidth) return;
      var rgba = pixelsOf(video, video.videoWidth, video.videoHeight);
      var canvas = document.createElement('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext('2d').drawImage(video, 0, 0);
      var scores = await classify(rgba, video.videoWidth, video.videoHeight);
      var top = topOf(scores);
      var name = 'camera ' + new Date().toLocaleTimeString();
      page.results.push({ name: name, scores: scores, top: top });
      showResult(newBatch(), name, canvas.toDataURL('image/jpeg', 0.8), top);
    });
  }

  wireInputs();
  page.ready = load().catch(function (err) {
    setStatus('Could not load the model: ' + (err && err.message || err), 'error');
    throw err;
  });
  page.ready.catch(function () { /* shown on the page */ });
})();
