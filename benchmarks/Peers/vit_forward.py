"""A peer for the inference benchmark: the same DINOv2 ViT forward in Debian's PyTorch (python3-torch).

Builds a DINOv2-style ViT (patch embedding, class token, learned position embedding, pre-norm blocks with
LayerScale, GELU MLP of 4x width, final LayerNorm, class-token output) with random weights, in eval mode, on
this process's threads. Then it waits on stdin: each line "N" runs N images in batches and answers one line
with the images per second, so that the benchmark can interleave it with its own cases round after round.

    python3 vit_forward.py --dim 384 --depth 12 --heads 6 --side 224 --batch 16 --threads 2
"""
import argparse
import sys
import time

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ls1 = nn.Parameter(torch.full((dim,), 0.1))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.ls2 = nn.Parameter(torch.full((dim,), 0.1))
        self.heads = heads

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attention = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        y = (attention.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.ls1 * self.proj(y)
        return x + self.ls2 * self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class Vit(nn.Module):
    def __init__(self, dim, depth, heads, patch, side):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + (side // patch) ** 2, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]


def blas():
    """The BLAS library this process loaded: Debian's torch multiplies through whichever libblas.so.3 is selected."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
    return ", ".join(sorted(paths)) or "none loaded"


def main():
    parser = argparse.ArgumentParser()
    for name, default in (("dim", 384), ("depth", 12), ("heads", 6), ("patch", 14), ("side", 224), ("batch", 16), ("threads", 2)):
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    model = Vit(args.dim, args.depth, args.heads, args.patch, args.side).eval()
    batch = torch.randn(args.batch, 3, args.side, args.side)
    with torch.inference_mode():
        model(batch)
        print(f"ready: torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS {blas()}, "
              f"{'oneDNN' if torch.backends.mkldnn.is_available() else 'no oneDNN'}", flush=True)
        for line in sys.stdin:
            images = int(line)
            runs = max(1, (images + args.batch - 1) // args.batch)
            start = time.perf_counter()
            for _ in range(runs):
                model(batch)
            print(runs * args.batch / (time.perf_counter() - start), flush=True)


if __name__ == "__main__":
    main()
