#!/usr/bin/env bash
# One epoch of simple_cnn on the 10,000 Fashion-MNIST t10k images (as a one-split IDX folder), batch 32, Adam,
# graft (compiled onnx step, tfjs wasm step) and PyTorch alternating; 2 threads everywhere.
cd "$(dirname "$0")/.."
: "${FM10K:?set FM10K to a folder holding the t10k images and labels named train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz}"
for round in 1 2; do
  for side in onnx tfjs torch; do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    start=$(date +%s.%N)
    if [ $side = torch ]; then
      out=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/simple_cnn_epoch_torch.py --images "$FM10K"/train-images-idx3-ubyte.gz --labels "$FM10K"/train-labels-idx1-ubyte.gz --threads 2 2>&1 | tail -1)
    else
      rm -rf /tmp/epoch-$side
      out=$(node bin/graft --threads 2 train --data "$FM10K" --arch simple_cnn --weights none --epochs 1 --val-split 0 --batch-size 32 --train-engine $side --out /tmp/epoch-$side 2>&1 | grep "^epoch 1")
    fi
    end=$(date +%s.%N)
    echo "round $round $side load[$load] wall $(echo "$end - $start" | bc) :: $out"
  done
done
