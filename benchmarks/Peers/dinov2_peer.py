"""What the benchmark peers share: a DINOv2-style ViT in Debian's PyTorch (python3-torch), the BLAS it runs on,
and the stdin protocol through which the benchmarks interleave a peer with their own cases.

The ViT: patch embedding, class token, learned position embedding (interpolated for other grids), pre-norm blocks
with LayerScale (or without), GELU MLP of 4x width, stochastic depth when training, final LayerNorm; forward returns the class
token and the patch tokens.
"""
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F


class Block(nn.Module):
    def __init__(self, dim, heads, drop_path, layerscale):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.ls1 = nn.Parameter(torch.full((dim,), 1e-5)) if layerscale else None
        self.ls2 = nn.Parameter(torch.full((dim,), 1e-5)) if layerscale else None
        self.heads = heads
        self.drop_path = drop_path

    def attention(self, x):
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        # Debian 12's torch (1.13) has no fused scaled_dot_product_attention: the product's own graph, written out.
        q, k, v = qkv[0], qkv[1], qkv[2]
        y = ((q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5).softmax(dim=-1) @ v
        y = self.proj(y.transpose(1, 2).reshape(b, n, d))
        return y if self.ls1 is None else self.ls1 * y

    def mlp(self, x):
        y = self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return y if self.ls2 is None else self.ls2 * y

    def forward(self, x):
        for branch in (self.attention, self.mlp):
            if self.training and self.drop_path > 0:
                keep = (torch.rand(x.shape[0], 1, 1) >= self.drop_path).to(x.dtype) / (1 - self.drop_path)
                x = x + branch(x) * keep
            else:
                x = x + branch(x)
        return x


class Vit(nn.Module):
    def __init__(self, dim, depth, heads, patch, side, drop_path, layerscale=True):
        super().__init__()
        self.patch = patch
        self.grid = side // patch
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid ** 2, dim) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, drop_path * i / max(1, depth - 1), layerscale) for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def position(self, h, w):
        if (h, w) == (self.grid, self.grid):
            return self.pos_embed
        patches = self.pos_embed[:, 1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        patches = F.interpolate(patches, size=(h, w), mode="bicubic", align_corners=False)
        return torch.cat([self.pos_embed[:, :1], patches.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)

    def forward(self, images, masks=None):
        x = self.patch_embed(images)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        if masks is not None:
            x = torch.where(masks.unsqueeze(-1), self.mask_token.to(x.dtype).unsqueeze(0), x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.position(h, w)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, 0], x[:, 1:]


def blas():
    """The BLAS library this process loaded: Debian's torch multiplies through whichever libblas.so.3 is selected."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
    return ", ".join(sorted(paths)) or "none loaded"


def serve(description, batch, run):
    """Says "ready: ..." with the torch build, then answers each stdin line "N" with the images per second of
    ceil(N / batch) calls of run(), each of batch images."""
    print(f"ready: torch {torch.__version__}, {torch.get_num_threads()} threads, {description}BLAS {blas()}, "
          f"{'oneDNN' if torch.backends.mkldnn.is_available() else 'no oneDNN'}", flush=True)
    for line in sys.stdin:
        runs = max(1, (int(line) + batch - 1) // batch)
        start = time.perf_counter()
        for _ in range(runs):
            run()
        print(runs * batch / (time.perf_counter() - start), flush=True)
