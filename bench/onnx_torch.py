"""PyTorch CPU side of graft's `onnx` benchmark (run by bench/onnx.ts in the same invocation).

--mode features: the whole job graft's feature extraction does: import torch, build the trunk, decode and resize the
JPEGs with PIL, normalise, run pooled features in batches under no_grad. The caller times the whole process; this
prints the in-process seconds too.
--mode step: one fine-tuning step at batch B with only the last stage and a new 10-class head trainable (the frozen
part runs with batch norm in inference mode and no autograd), SGD with momentum; best of --reps after a warm-up (the least disturbed by other work).
Random weights: speed does not depend on them. Prints one JSON object on stdout.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision
from PIL import Image


def trunk(arch):
    """(frozen part, last stage, feature width), split where graft's groups split: ResNet50 conv5, VGG16 block5,
    MobileNetV2 stage7, EfficientNetB0 block7."""
    if arch == 'resnet50':
        m = torchvision.models.resnet50()
        return nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3), m.layer4, 2048
    if arch == 'vgg16':
        f = torchvision.models.vgg16().features
        return f[:24], f[24:], 512
    if arch == 'mobilenet_v2':
        # graft's last group (stage7) is block_16 plus Conv_1: torchvision's features[17] and features[18].
        f = torchvision.models.mobilenet_v2().features
        return f[:17], f[17:], 1280
    if arch == 'efficientnet_b0':
        # graft's last group (block7) is the stage-7 MBConv plus top_conv: torchvision's features[7] and features[8].
        f = torchvision.models.efficientnet_b0().features
        return f[:7], f[7:], 1280
    raise SystemExit(f'unknown arch {arch}')


def features(args):
    start = time.perf_counter()
    frozen, stage, _ = trunk(args.arch)
    model = nn.Sequential(frozen, stage, nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    files = sorted(os.path.join(args.images, f) for f in os.listdir(args.images) if f.endswith('.jpg'))
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    out = []
    infer = 0.0
    with torch.no_grad():
        for i in range(0, len(files), args.batch):
            batch = []
            for f in files[i:i + args.batch]:
                img = Image.open(f).convert('RGB').resize((args.size, args.size), Image.BILINEAR)
                batch.append((np.asarray(img, dtype=np.float32) / 255.0 - mean) / std)
            x = torch.from_numpy(np.stack(batch).transpose(0, 3, 1, 2).copy())
            t = time.perf_counter()
            out.append(model(x))
            infer += time.perf_counter() - t
    feats = torch.cat(out)
    return {'images': len(files), 'width': feats.shape[1], 'seconds': time.perf_counter() - start, 'inference_s': infer}


def step(args):
    frozen, stage, width = trunk(args.arch)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))
    for p in frozen.parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD(list(stage.parameters()) + list(head.parameters()), lr=1e-3, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(args.batch, 3, args.size, args.size)
    labels = torch.randint(0, 10, (args.batch,))

    def once():
        frozen.eval()
        stage.train()
        head.train()
        opt.zero_grad()
        with torch.no_grad():
            f = frozen(x)
        loss = loss_fn(head(stage(f)), labels)
        loss.backward()
        opt.step()

    once()
    times = []
    for _ in range(args.reps):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return {'step_s': min(times)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mode', choices=['features', 'step'], required=True)
    ap.add_argument('--arch', required=True)
    ap.add_argument('--images')
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--size', type=int, default=224)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--reps', type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = features(args) if args.mode == 'features' else step(args)
    result['torch'] = torch.__version__
    print(json.dumps(result))


if __name__ == '__main__':
    main()
