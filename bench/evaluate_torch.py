"""PyTorch side of graft's `evaluate` benchmark (run by bench/evaluate.ts in the same invocation, alternating).

The whole job `graft evaluate` does, the way a PyTorch user writes it: import torch, build the model, a 2-worker
DataLoader over the data (torchvision's ImageFolder for a PNG folder; for IDX files, the FashionMNIST dataset's own
__getitem__: PIL image from the uint8 array, then ToTensor), forward under no_grad, then scikit-learn's
classification_report and confusion matrix. The caller times the whole process (OMP_WAIT_POLICY=PASSIVE); this
prints in-process seconds and the time to the first batch. Random weights: speed does not depend on them.
"""
import argparse
import gzip
import json
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.metrics import classification_report, confusion_matrix  # noqa: E402


class IdxImages(torch.utils.data.Dataset):
    """torchvision.datasets.FashionMNIST without its download and folder layout: same __getitem__."""

    def __init__(self, images, labels, transform):
        self.data = torch.from_numpy(images)
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.transform = transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        img = Image.fromarray(self.data[i].numpy(), mode='L')
        return self.transform(img), int(self.targets[i])


def read_idx(path):
    with gzip.open(path) if path.endswith('.gz') else open(path, 'rb') as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape).copy()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--data', required=True, help='image folder, or the images IDX file (labels beside it)')
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1)).eval()
    tf = torchvision.transforms
    if 'idx3' in args.data:
        ds = IdxImages(read_idx(args.data), read_idx(args.data.replace('images-idx3', 'labels-idx1')), tf.ToTensor())
    else:
        ds = torchvision.datasets.ImageFolder(args.data, transform=tf.Compose([tf.Grayscale(), tf.ToTensor()]))
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, num_workers=args.workers)
    y_true, y_pred = [], []
    first = None
    with torch.no_grad():
        for x, y in loader:
            if first is None:
                first = time.perf_counter() - START
            y_pred.append(model(x).argmax(1).numpy())
            y_true.append(y.numpy())
    y_true, y_pred = np.concatenate(y_true), np.concatenate(y_pred)
    report = classification_report(y_true, y_pred, labels=list(range(10)), digits=4, zero_division=0)
    confusion_matrix(y_true, y_pred, labels=list(range(10)))
    print(json.dumps({'images': int(len(y_true)), 'seconds': time.perf_counter() - START, 'first_batch_s': first,
                      'report_lines': report.count('\n'), 'torch': torch.__version__}))


if __name__ == '__main__':
    main()
