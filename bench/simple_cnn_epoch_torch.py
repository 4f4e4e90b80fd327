"""PyTorch peer of one `graft train` epoch of simple_cnn on IDX images (issue 13's first workload): the same network
(conv 32 / conv 64, 3x3 same, ReLU, 2x2 max pool, flatten, dense 128 ReLU, dropout 0.5, dense N softmax), Adam,
batch 32, shuffled, images read from the IDX files and scaled to [0, 1], through a DataLoader. Prints JSON: the
epoch's training images/s and the whole process's seconds (start-up and data loading included)."""
import argparse
import gzip
import json
import os
import time

START = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def read_idx(path):
    with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--images', required=True)
    ap.add_argument('--labels', required=True)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--workers', type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.from_numpy(read_idx(args.images).astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(read_idx(args.labels).astype(np.int64))
    classes = int(y.max()) + 1
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=args.batch, shuffle=True, num_workers=args.workers)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, classes),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    t = time.perf_counter()
    seen = 0
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        seen += len(yb)
    loss.item()
    epoch = time.perf_counter() - t
    print(json.dumps({'torch': torch.__version__, 'ips': seen / epoch, 'epoch_s': epoch, 'process_s': time.perf_counter() - START, 'images': seen}))


if __name__ == '__main__':
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    main()
