"""PyTorch CPU peer of graft's training benchmarks (bench/engines.ts, bench/train-step.ts, bench/train-speed.ts).

Same work as the Node side: each architecture at its default input size with a new 10-class head, batch B:
inference images/s, a training step images/s (SGD with momentum; `--trainable last`: the last stage + head train,
the rest frozen with batch-norm in eval mode; `--trainable all`: everything trains, batch-norm in training mode),
and one head-only epoch on cached features (`--train-only` measures the step alone). The last stage is the same
layers as graft's last trunk group: VGG16 block5 (features[24:]), ResNet50 conv5 (layer4), Inception V3 mixed8-10
(Mixed_7a-7c), Xception block13 + block14 (the exit flow). Random weights: speed does not depend on them. Prints one
JSON object on stdout.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torchvision


class SeparableConv(nn.Sequential):
    """Keras SeparableConv2D (depthwise then pointwise, no bias) followed by batch norm."""

    def __init__(self, cin, cout):
        super().__init__(
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class XceptionBlock(nn.Module):
    """A residual Xception block: [relu] sepconv, relu, sepconv (+ maxpool and 1x1 stride-2 shortcut)."""

    def __init__(self, cin, cout, first_relu=True, reduce=True, mid=None):
        super().__init__()
        mid = mid or cout
        layers = ([nn.ReLU()] if first_relu else []) + [SeparableConv(cin, mid), nn.ReLU(), SeparableConv(mid, cout)]
        self.reduce = reduce
        if reduce:
            layers.append(nn.MaxPool2d(3, 2, padding=1))
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
        else:
            layers = [nn.ReLU(), SeparableConv(cin, cout), nn.ReLU(), SeparableConv(cout, cout), nn.ReLU(), SeparableConv(cout, cout)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x) + (self.shortcut(x) if self.reduce else x)


def xception():
    """Keras Applications' Xception (torchvision has none); `features` and `exit` split like graft's groups."""
    stem = nn.Sequential(
        nn.Conv2d(3, 32, 3, stride=2, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
    )
    entry = [XceptionBlock(64, 128, first_relu=False), XceptionBlock(128, 256), XceptionBlock(256, 728)]
    middle = [XceptionBlock(728, 728, reduce=False) for _ in range(8)]
    exit_flow = nn.Sequential(
        XceptionBlock(728, 1024, mid=728),
        SeparableConv(1024, 1536), nn.ReLU(), SeparableConv(1536, 2048), nn.ReLU(),
    )
    return nn.Sequential(stem, *entry, *middle), exit_flow, 2048


def trunk(arch):
    """(frozen part, trainable last stage, feature width) of each architecture, matching graft's layer groups."""
    if arch == 'vgg16':
        f = torchvision.models.vgg16().features
        return f[:24], f[24:], 512  # block5 = the last three convs and the pool
    if arch == 'resnet50':
        m = torchvision.models.resnet50()
        return nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3), m.layer4, 2048
    if arch == 'inception_v3':
        m = torchvision.models.inception_v3(aux_logits=False, init_weights=False)
        frozen = nn.Sequential(
            m.Conv2d_1a_3x3, m.Conv2d_2a_3x3, m.Conv2d_2b_3x3, m.maxpool1, m.Conv2d_3b_1x1, m.Conv2d_4a_3x3, m.maxpool2,
            m.Mixed_5b, m.Mixed_5c, m.Mixed_5d, m.Mixed_6a, m.Mixed_6b, m.Mixed_6c, m.Mixed_6d, m.Mixed_6e,
        )
        return frozen, nn.Sequential(m.Mixed_7a, m.Mixed_7b, m.Mixed_7c), 2048  # Keras mixed8-10
    if arch == 'xception':
        return xception()
    raise SystemExit(f'unknown arch {arch}')


def timed(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


STAGES = {
    'vgg16': 'features[24:] (block5)',
    'resnet50': 'layer4 (conv5)',
    'inception_v3': 'Mixed_7a-7c (mixed8-10)',
    'xception': 'exit flow (block13-14)',
}


def measure(arch, size, batch, reps, classes=10, cached=1024, trainable='last', train_only=False):
    frozen, stage, width = trunk(arch)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))
    model = nn.Sequential(frozen, stage, head)
    x = torch.randn(batch, 3, size, size)
    labels = torch.randint(0, classes, (batch,))
    out = {}

    if not train_only:
        model.eval()
        with torch.no_grad():
            out['inference_ips'] = batch / timed(lambda: model(x), reps)

    if trainable == 'last':
        for p in frozen.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        model.train()
        if trainable == 'last':
            frozen.eval()  # frozen batch norm runs in inference mode, as in graft
        opt.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        opt.step()

    out['train_ips'] = batch / timed(step, reps)
    out['trains'] = STAGES.get(arch, '?') + ' + avgpool/fc' if trainable == 'last' else 'everything'
    if train_only:
        return out

    feats = torch.randn(cached, width)
    flabels = torch.randint(0, classes, (cached,))
    linear = nn.Linear(width, classes)
    hopt = torch.optim.SGD(linear.parameters(), lr=1e-3, momentum=0.9)

    def epoch():
        for i in range(0, cached, batch):
            hopt.zero_grad()
            loss_fn(linear(feats[i:i + batch]), flabels[i:i + batch]).backward()
            hopt.step()

    out['head_epoch_s'] = timed(epoch, reps)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--archs', default='vgg16,resnet50,inception_v3,xception')
    ap.add_argument('--sizes', default='224,224,299,299')
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--reps', type=int, default=2)
    ap.add_argument('--trainable', choices=['last', 'all'], default='last')
    ap.add_argument('--train-only', action='store_true')
    args = ap.parse_args()
    out = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'results': {}}
    for threads in [int(t) for t in args.threads.split(',')]:
        torch.set_num_threads(threads)
        for arch, size in zip(args.archs.split(','), [int(s) for s in args.sizes.split(',')]):
            torch.manual_seed(0)
            out['results'][f'{arch}/{threads}'] = measure(arch, size, args.batch, args.reps, trainable=args.trainable, train_only=args.train_only)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
