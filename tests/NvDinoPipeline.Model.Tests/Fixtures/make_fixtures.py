#!/usr/bin/python3
"""Reference fixtures for the backbone tests.

An independent reimplementation of DINOv2's DinoVisionTransformer forward pass (facebookresearch/dinov2,
dinov2/models/vision_transformer.py and dinov2/layers/*) on plain tensor operations, evaluated in float64.
It writes tiny random backbones as .safetensors (format written by hand below) and as .pth (torch.save of the
state dict), the input images, and the expected CLS / patch / register outputs.

Run with Debian's interpreter (torch 1.13):  /usr/bin/python3 make_fixtures.py
"""
import json
import math
import os
import struct
from collections import OrderedDict

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
PATCH = 14
EPS = 1e-6
OFFSET = 0.1

VARIANTS = {
    # name: (embed, depth, heads, img, ffn, registers, layerscale)
    "vit_mlp_noreg": dict(dim=16, depth=2, heads=2, img=28, ffn="mlp", regs=0, layerscale=True),
    "vit_swiglu_reg4": dict(dim=16, depth=2, heads=2, img=42, ffn="swiglu", regs=4, layerscale=True),
    "vit_mlp_reg4_nols": dict(dim=16, depth=2, heads=2, img=28, ffn="mlp", regs=4, layerscale=False),
}


def ffn_hidden(cfg):
    hidden = int(cfg["dim"] * 4.0)
    if cfg["ffn"] == "swiglu":
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
    return hidden


def make_weights(cfg, gen):
    """Random weights of a size that makes every term matter (LayerScale near 1, not 1e-5)."""
    d, hidden = cfg["dim"], ffn_hidden(cfg)
    grid = cfg["img"] // PATCH

    def rnd(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale + shift).float()

    sd = OrderedDict()
    sd["cls_token"] = rnd(1, 1, d, scale=0.5)
    sd["pos_embed"] = rnd(1, grid * grid + 1, d, scale=0.5)
    if cfg["regs"]:
        sd["register_tokens"] = rnd(1, cfg["regs"], d, scale=0.5)
    sd["mask_token"] = rnd(1, d, scale=0.5)
    sd["patch_embed.proj.weight"] = rnd(d, 3, PATCH, PATCH, scale=0.05)
    sd["patch_embed.proj.bias"] = rnd(d, scale=0.1)
    for i in range(cfg["depth"]):
        p = f"blocks.{i}."
        sd[p + "norm1.weight"] = rnd(d, scale=0.1, shift=1.0)
        sd[p + "norm1.bias"] = rnd(d, scale=0.1)
        sd[p + "attn.qkv.weight"] = rnd(3 * d, d, scale=0.3)
        sd[p + "attn.qkv.bias"] = rnd(3 * d, scale=0.1)
        sd[p + "attn.proj.weight"] = rnd(d, d, scale=0.3)
        sd[p + "attn.proj.bias"] = rnd(d, scale=0.1)
        if cfg["layerscale"]:
            sd[p + "ls1.gamma"] = rnd(d, scale=0.2, shift=0.8)
        sd[p + "norm2.weight"] = rnd(d, scale=0.1, shift=1.0)
        sd[p + "norm2.bias"] = rnd(d, scale=0.1)
        if cfg["ffn"] == "mlp":
            sd[p + "mlp.fc1.weight"] = rnd(hidden, d, scale=0.3)
            sd[p + "mlp.fc1.bias"] = rnd(hidden, scale=0.1)
            sd[p + "mlp.fc2.weight"] = rnd(d, hidden, scale=0.2)
            sd[p + "mlp.fc2.bias"] = rnd(d, scale=0.1)
        else:
            sd[p + "mlp.w12.weight"] = rnd(2 * hidden, d, scale=0.3)
            sd[p + "mlp.w12.bias"] = rnd(2 * hidden, scale=0.1)
            sd[p + "mlp.w3.weight"] = rnd(d, hidden, scale=0.2)
            sd[p + "mlp.w3.bias"] = rnd(d, scale=0.1)
        if cfg["layerscale"]:
            sd[p + "ls2.gamma"] = rnd(d, scale=0.2, shift=0.8)
    sd["norm.weight"] = rnd(d, scale=0.1, shift=1.0)
    sd["norm.bias"] = rnd(d, scale=0.1)
    return sd


def position_embedding(pe, grid_h, grid_w):
    n = pe.shape[1] - 1
    if n == grid_h * grid_w and grid_h == grid_w:
        return pe
    m = int(math.sqrt(n))
    d = pe.shape[2]
    cls_pos = pe[:, :1]
    grid = pe[:, 1:].reshape(1, m, m, d).permute(0, 3, 1, 2)
    scale = ((grid_h + OFFSET) / m, (grid_w + OFFSET) / m)
    grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", align_corners=False)
    assert grid.shape[-2:] == (grid_h, grid_w), grid.shape
    return torch.cat([cls_pos, grid.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, d)], dim=1)


def attention(x, qkv_w, qkv_b, proj_w, proj_b, heads):
    b, n, c = x.shape
    qkv = F.linear(x, qkv_w, qkv_b).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1)
    weights = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    out = (weights @ v).transpose(1, 2).reshape(b, n, c)
    return F.linear(out, proj_w, proj_b)


def gelu_exact(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def forward(sd, cfg, images, masks=None):
    sd = {k: v.double() for k, v in sd.items()}
    x = images.double()
    d, regs = cfg["dim"], cfg["regs"]
    b, _, h, w = x.shape
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=PATCH)
    t = t.flatten(2).transpose(1, 2)
    if masks is not None:
        t = torch.where(masks.unsqueeze(-1), sd["mask_token"].unsqueeze(0), t)
    t = torch.cat([sd["cls_token"].expand(b, -1, -1), t], dim=1)
    t = t + position_embedding(sd["pos_embed"], h // PATCH, w // PATCH)
    if regs:
        t = torch.cat([t[:, :1], sd["register_tokens"].expand(b, -1, -1), t[:, 1:]], dim=1)
    for i in range(cfg["depth"]):
        p = f"blocks.{i}."
        y = F.layer_norm(t, (d,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], EPS)
        y = attention(y, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"],
                      sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"], cfg["heads"])
        if cfg["layerscale"]:
            y = y * sd[p + "ls1.gamma"]
        t = t + y
        y = F.layer_norm(t, (d,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], EPS)
        if cfg["ffn"] == "mlp":
            y = F.linear(gelu_exact(F.linear(y, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                         sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        else:
            x12 = F.linear(y, sd[p + "mlp.w12.weight"], sd[p + "mlp.w12.bias"])
            x1, x2 = x12.chunk(2, dim=-1)
            y = F.linear(x1 * torch.sigmoid(x1) * x2, sd[p + "mlp.w3.weight"], sd[p + "mlp.w3.bias"])
        if cfg["layerscale"]:
            y = y * sd[p + "ls2.gamma"]
        t = t + y
    t = F.layer_norm(t, (d,), sd["norm.weight"], sd["norm.bias"], EPS)
    return t[:, 0].float(), t[:, regs + 1:].float(), t[:, 1:regs + 1].float()


SAFETENSORS_TYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": SAFETENSORS_TYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * ((8 - len(encoded) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for data in blobs:
            f.write(data)


def parameter_count(dim, depth, heads, ffn, img=518, regs=0, layerscale=True):
    """Counts DINOv2 parameters by building the tensors on the meta device (no memory)."""
    cfg = dict(dim=dim, depth=depth, heads=heads, img=img, ffn=ffn, regs=regs, layerscale=layerscale)
    hidden = ffn_hidden(cfg)
    grid = img // PATCH
    shapes = [(1, 1, dim), (1, grid * grid + 1, dim), (1, dim), (dim, 3, PATCH, PATCH), (dim,)]
    if regs:
        shapes.append((1, regs, dim))
    for _ in range(depth):
        shapes += [(dim,), (dim,), (3 * dim, dim), (3 * dim,), (dim, dim), (dim,), (dim,), (dim,)]
        if layerscale:
            shapes += [(dim,), (dim,)]
        if ffn == "mlp":
            shapes += [(hidden, dim), (hidden,), (dim, hidden), (dim,)]
        else:
            shapes += [(2 * hidden, dim), (2 * hidden,), (dim, hidden), (dim,)]
    shapes += [(dim,), (dim,)]
    return sum(torch.empty(*s, device="meta").numel() for s in shapes)


def main():
    gen = torch.Generator().manual_seed(20240607)
    inputs = OrderedDict()
    inputs["img_28"] = torch.randn(2, 3, 28, 28, generator=gen)
    inputs["img_42"] = torch.randn(2, 3, 42, 42, generator=gen)
    inputs["img_56x42"] = torch.randn(1, 3, 56, 42, generator=gen)
    inputs["img_14x56"] = torch.randn(1, 3, 14, 56, generator=gen)
    write_safetensors(os.path.join(HERE, "inputs.safetensors"), inputs)

    for name, cfg in VARIANTS.items():
        sd = make_weights(cfg, gen)
        write_safetensors(os.path.join(HERE, f"{name}.safetensors"), sd)
        torch.save(sd, os.path.join(HERE, f"{name}.pth"))

        expected = OrderedDict()
        trained = "img_28" if cfg["img"] == 28 else "img_42"
        runs = [trained, "img_56x42", "img_14x56"]
        if cfg["img"] == 28:
            runs.append("img_42")
        for run in runs:
            cls, patches, regs = forward(sd, cfg, inputs[run])
            expected[f"{run}.cls"] = cls
            expected[f"{run}.patch"] = patches
            if cfg["regs"]:
                expected[f"{run}.reg"] = regs
        n = (cfg["img"] // PATCH) ** 2
        masks = torch.zeros(2, n, dtype=torch.bool)
        masks[0, 1] = True
        masks[1, 0] = True
        masks[1, n - 1] = True
        cls, patches, _ = forward(sd, cfg, inputs[trained], masks)
        expected["masks"] = masks.to(torch.int64)
        expected[f"{trained}.masked.cls"] = cls
        expected[f"{trained}.masked.patch"] = patches
        write_safetensors(os.path.join(HERE, f"{name}.expected.safetensors"), expected)

        if name == "vit_mlp_noreg":
            write_training_checkpoint(sd, gen)

    dtypes = OrderedDict()
    values = torch.tensor([[0.5, -1.25, 3.0], [1e-3, 65504.0, -2.0 ** -14]], dtype=torch.float32)
    dtypes["f16"] = values.half()
    dtypes["bf16"] = values.bfloat16()
    dtypes["f16_as_f32"] = values.half().float()
    dtypes["bf16_as_f32"] = values.bfloat16().float()
    dtypes["i64"] = torch.tensor([1, -2, 3 << 40], dtype=torch.int64)
    write_safetensors(os.path.join(HERE, "dtypes.safetensors"), dtypes, metadata={"producer": "make_fixtures.py"})

    counts = {
        "vit_s": parameter_count(384, 12, 6, "mlp"),
        "vit_b": parameter_count(768, 12, 12, "mlp"),
        "vit_l": parameter_count(1024, 24, 16, "mlp"),
        "vit_g": parameter_count(1536, 40, 24, "swiglu"),
    }
    with open(os.path.join(HERE, "param_counts.json"), "w") as f:
        json.dump(counts, f, indent=2)
        f.write("\n")


def write_training_checkpoint(sd, gen):
    """A DINOv2-training-style checkpoint: student and teacher backbones and heads, chunked block keys
    (block_chunks=1 gives blocks.0.<i>.*), an optimizer state and an iteration counter."""
    model = OrderedDict()
    for key, value in sd.items():
        model["student.backbone." + key] = value + 1.0
    for key, value in sd.items():
        chunked = key.replace("blocks.", "blocks.0.", 1) if key.startswith("blocks.") else key
        model["teacher.backbone." + chunked] = value
    model["teacher.dino_head.mlp.0.weight"] = torch.randn(8, 16, generator=gen)
    checkpoint = {
        "model": model,
        "optimizer": {"state": {0: {"step": 3, "exp_avg": torch.zeros(4)}},
                      "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None}]},
        "iteration": 12,
    }
    torch.save(checkpoint, os.path.join(HERE, "dinov2_training_checkpoint.pth"))


if __name__ == "__main__":
    main()
