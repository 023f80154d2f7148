"""A peer for the inference benchmark: the same DINOv2 ViT forward in Debian's PyTorch (python3-torch).

Builds the DINOv2-style ViT of dinov2_peer.py with random weights, in eval mode, on this process's threads. Then
it waits on stdin: each line "N" runs N images in batches and answers one line with the images per second, so that
the benchmark can interleave it with its own cases round after round.

    python3 vit_forward.py --dim 384 --depth 12 --heads 6 --side 224 --batch 16 --threads 2
"""
import argparse

import torch

from dinov2_peer import Vit, serve


def main():
    parser = argparse.ArgumentParser()
    for name, default in (("dim", 384), ("depth", 12), ("heads", 6), ("patch", 14), ("side", 224), ("batch", 16), ("threads", 2)):
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    model = Vit(args.dim, args.depth, args.heads, args.patch, args.side, drop_path=0.0).eval()
    batch = torch.randn(args.batch, 3, args.side, args.side)
    with torch.inference_mode():
        model(batch)
        serve("", args.batch, lambda: model(batch))


if __name__ == "__main__":
    main()
