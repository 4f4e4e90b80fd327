/*
 * graft's image preparation for the browser: decoded RGBA pixels in, the model's preprocessed input out, the same
 * steps graft runs in Node (src/data/image.ts and src/models/preprocess.ts):
 *   1. transparency flattened onto white;
 *   2. resized to the model's width x height, squashed (sharp's fit 'fill' with its linear kernel);
 *   3. one grey channel by ITU-R 601 luma when the model takes one channel;
 *   4. the Keras preprocess_input mode named in graft.json (caffe, tf, torch, unit, none).
 * Steps 1, 3 and 4 match Node exactly. Step 2 is a triangle filter written after libvips' reduce with the linear
 * kernel; it is not libvips' code, so a resized image can differ from Node's by a level here and there (the README's
 * "Deploying to the browser" gives the measured difference). An image already at the model's size is not resampled.
 *
 * A classic script (no modules, so the page works from any static server): it defines `graftPixels` in the browser,
 * and `module.exports` under Node, where graft's tests check it against the Node pipeline.
 */
(function (root) {
  'use strict';

  /** ImageNet BGR means of Keras' caffe mode. */
  var CAFFE_BGR_MEAN = [103.939, 116.779, 123.68];
  /** ImageNet RGB means and standard deviations of Keras' torch mode. */
  var TORCH_MEAN = [0.485, 0.456, 0.406];
  var TORCH_STD = [0.229, 0.224, 0.225];
  /** ITU-R 601 luma weights (PIL's convert('L'), tf.image.rgb_to_grayscale). */
  var LUMA = [0.299, 0.587, 0.114];
  var MODES = ['caffe', 'tf', 'torch', 'none', 'unit'];

  function avg(xs) {
    return xs.reduce(function (a, b) { return a + b; }, 0) / xs.length;
  }

  /** RGBA bytes to RGB bytes over a white background, as libvips' flatten computes it. */
  function flattenOnWhite(rgba) {
    var n = rgba.length / 4;
    var rgb = new Uint8Array(n * 3);
    for (var i = 0, j = 0, o = 0; i < n; i++, j += 4, o += 3) {
      var a = rgba[j + 3];
      if (a === 255) {
        rgb[o] = rgba[j];
        rgb[o + 1] = rgba[j + 1];
        rgb[o + 2] = rgba[j + 2];
      } else {
        var white = 255 * (255 - a);
        rgb[o] = Math.trunc((rgba[j] * a + white) / 255);
        rgb[o + 1] = Math.trunc((rgba[j + 1] * a + white) / 255);
        rgb[o + 2] = Math.trunc((rgba[j + 2] * a + white) / 255);
      }
    }
    return rgb;
  }

  /**
   * Weights of one output sample along one axis, as libvips' reduce with the linear kernel computes them: when
   * shrinking, a triangle filter as wide as the shrink factor centred on the output sample (centres aligned); when
   * enlarging, linear interpolation at o * scale - 0.5 (where libvips samples an enlargement). Edges repeat.
   */
  function axisTaps(inSize, outSize) {
    var scale = inSize / outSize;
    var support = Math.max(1, scale);
    var taps = [];
    for (var o = 0; o < outSize; o++) {
      var centre = scale >= 1 ? (o + 0.5) * scale - 0.5 : o * scale - 0.5;
      var first = Math.floor(centre - support) + 1;
      var last = Math.ceil(centre + support) - 1;
      var idx = [];
      var w = [];
      var sum = 0;
      for (var i = first; i <= last; i++) {
        var weight = 1 - Math.abs(i - centre) / support;
        if (weight <= 0) continue;
        idx.push(Math.min(inSize - 1, Math.max(0, i)));
        w.push(weight);
        sum += weight;
      }
      for (var k = 0; k < w.length; k++) w[k] /= sum;
      taps.push({ idx: idx, w: w });
    }
    return taps;
  }

  /** One resampling pass along an axis of interleaved bytes, rounded back to bytes as libvips' 8-bit path does. */
  function resampleAxis(pixels, width, height, channels, vertical, taps) {
    var outW = vertical ? width : taps.length;
    var outH = vertical ? taps.length : height;
    var out = new Uint8Array(outW * outH * channels);
    for (var y = 0; y < outH; y++) {
      for (var x = 0; x < outW; x++) {
        var t = taps[vertical ? y : x];
        for (var c = 0; c < channels; c++) {
          var s = 0;
          for (var k = 0; k < t.idx.length; k++) {
            var src = vertical ? (t.idx[k] * width + x) : (y * width + t.idx[k]);
            s += t.w[k] * pixels[src * channels + c];
          }
          out[(y * outW + x) * channels + c] = Math.min(255, Math.max(0, Math.round(s)));
        }
      }
    }
    return out;
  }

  /**
   * Box-averages blocks of `factor` samples along an axis in integers, rounding halves up (libvips' shrink); a short
   * last block repeats the edge sample.
   */
  function boxShrinkAxis(pixels, width, height, channels, vertical, factor) {
    var outW = vertical ? width : Math.ceil(width / factor);
    var outH = vertical ? Math.ceil(height / factor) : height;
    var out = new Uint8Array(outW * outH * channels);
    var half = factor >> 1;
    var rowLen = width * channels;
    if (vertical) {
      var sums = new Uint32Array(rowLen);
      for (var oy = 0; oy < outH; oy++) {
        sums.fill(0);
        for (var i = 0; i < factor; i++) {
          var base = Math.min(height - 1, oy * factor + i) * rowLen;
          for (var k = 0; k < rowLen; k++) sums[k] += pixels[base + k];
        }
        for (var k2 = 0; k2 < rowLen; k2++) out[oy * rowLen + k2] = Math.floor((sums[k2] + half) / factor);
      }
      return out;
    }
    for (var y = 0; y < height; y++) {
      for (var ox = 0; ox < outW; ox++) {
        for (var c = 0; c < channels; c++) {
          var sum = 0;
          for (var j = 0; j < factor; j++) sum += pixels[(y * width + Math.min(width - 1, ox * factor + j)) * channels + c];
          out[(y * outW + ox) * channels + c] = Math.floor((sum + half) / factor);
        }
      }
    }
    return out;
  }

  /**
   * Resizes interleaved bytes (`channels` per pixel) to outWidth x outHeight the way libvips' resize does with
   * the linear kernel: a box shrink by the whole part of (shrink / 2) first (libvips' default reduce gap of 2),
   * then the linear reduce (or enlargement), vertical pass before horizontal.
   */
  function resizeLinear(pixels, width, height, channels, outWidth, outHeight) {
    if (width === outWidth && height === outHeight) return pixels;
    var vBox = Math.max(1, Math.floor(height / outHeight / 2));
    var hBox = Math.max(1, Math.floor(width / outWidth / 2));
    var img = pixels;
    var w = width;
    var h = height;
    if (vBox > 1) {
      img = boxShrinkAxis(img, w, h, channels, true, vBox);
      h = Math.ceil(h / vBox);
    }
    if (hBox > 1) {
      img = boxShrinkAxis(img, w, h, channels, false, hBox);
      w = Math.ceil(w / hBox);
    }
    if (h !== outHeight) img = resampleAxis(img, w, h, channels, true, axisTaps(h, outHeight));
    if (w !== outWidth) img = resampleAxis(img, w, outHeight, channels, false, axisTaps(w, outWidth));
    return img;
  }

  /**
   * RGB bytes to one grey channel by luma on the encoded values, as libvips computes it: single-precision weights,
   * the sum rounded to single precision, then truncated to 8 bits. (In plain doubles a grey pixel v can come out
   * as v - 1e-14 and truncate to v - 1.)
   */
  var LUMA32 = LUMA.map(Math.fround);
  function toGrey(rgb) {
    var n = rgb.length / 3;
    var grey = new Uint8Array(n);
    for (var i = 0; i < n; i++) grey[i] = Math.trunc(Math.fround(LUMA32[0] * rgb[3 * i] + LUMA32[1] * rgb[3 * i + 1] + LUMA32[2] * rgb[3 * i + 2]));
    return grey;
  }

  /** Applies a preprocess_input mode to interleaved bytes (1 or 3 channels): graft's preprocessPixels. */
  function preprocess(bytes, channels, mode) {
    if (MODES.indexOf(mode) < 0) throw new Error('unknown preprocessing mode ' + JSON.stringify(mode) + '; graft knows ' + MODES.join(', '));
    var out = new Float32Array(bytes.length);
    var i;
    if (mode === 'none') {
      for (i = 0; i < bytes.length; i++) out[i] = bytes[i];
    } else if (mode === 'unit' || mode === 'tf') {
      var scale = mode === 'unit' ? 1 / 255 : 1 / 127.5;
      var shift = mode === 'unit' ? 0 : -1;
      for (i = 0; i < bytes.length; i++) out[i] = bytes[i] * scale + shift;
    } else if (channels === 3 && mode === 'caffe') {
      for (i = 0; i < bytes.length; i += 3) {
        out[i] = bytes[i + 2] - CAFFE_BGR_MEAN[0];
        out[i + 1] = bytes[i + 1] - CAFFE_BGR_MEAN[1];
        out[i + 2] = bytes[i] - CAFFE_BGR_MEAN[2];
      }
    } else if (channels === 3) {
      for (i = 0; i < bytes.length; i++) out[i] = (bytes[i] / 255 - TORCH_MEAN[i % 3]) / TORCH_STD[i % 3];
    } else if (mode === 'caffe') {
      var mean = avg(CAFFE_BGR_MEAN);
      for (i = 0; i < bytes.length; i++) out[i] = bytes[i] - mean;
    } else {
      var m = avg(TORCH_MEAN);
      var sd = avg(TORCH_STD);
      for (i = 0; i < bytes.length; i++) out[i] = (bytes[i] / 255 - m) / sd;
    }
    return out;
  }

  /**
   * Decoded RGBA pixels (width x height, as a canvas' getImageData gives them) to the model's input, a Float32Array
   * of inputShape [height, width, channels] in HWC order.
   */
  function modelInput(rgba, width, height, inputShape, mode) {
    var h = inputShape[0];
    var w = inputShape[1];
    var channels = inputShape[2];
    if (channels !== 1 && channels !== 3) throw new Error('models with ' + channels + ' input channels are not supported (1 or 3)');
    var rgb = resizeLinear(flattenOnWhite(rgba), width, height, 3, w, h);
    return preprocess(channels === 1 ? toGrey(rgb) : rgb, channels, mode);
  }

  var api = {
    MODES: MODES,
    flattenOnWhite: flattenOnWhite,
    resizeLinear: resizeLinear,
    toGrey: toGrey,
    preprocess: preprocess,
    modelInput: modelInput,
  };
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.graftPixels = api;
})(this);
