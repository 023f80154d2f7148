#!/usr/bin/python3
"""Reference outputs for the ONNX ViT export tests.

Run with Debian's python3-torch (1.13), from this folder:

    /usr/bin/python3 make_fixtures.py

Writes fixtures.bin (all tensors, little-endian float32, back to back) and fixtures.json
(configs, and the byte offset and shape of every tensor). The forward pass below is written
out by hand from DINOv2's DinoVisionTransformer.forward_features semantics:
tokens [cls, registers..., patches], position embedding added (and bicubically interpolated
with interpolate_offset 0 or 0.1) before the registers are inserted, pre-norm blocks with
optional LayerScale, exact-erf GELU MLP or SwiGLU FFN, final LayerNorm.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

EMBED_DIM, NUM_HEADS, DEPTH, PATCH, IMAGE = 24, 3, 2, 4, 16
GRID = IMAGE // PATCH
MLP_HIDDEN, SWIGLU_HIDDEN = 48, 16
LN_EPS = 1e-6

MODELS = {
    "mlp_layerscale": dict(ffn="mlp", registers=0, layerscale=True, mask_token=False),
    "mlp_registers": dict(ffn="mlp", registers=2, layerscale=False, mask_token=True),
    "swiglu": dict(ffn="swiglu", registers=0, layerscale=False, mask_token=False),
    "swiglu_registers_layerscale": dict(ffn="swiglu", registers=2, layerscale=True, mask_token=False),
}

# name: (batch, height, width). "skewed" has the trained patch count on a non-square input,
# which DINOv2 still interpolates; "thin" resizes one axis down to a single patch; "half_trained"
# keeps the trained grid size on one axis, where the offset variant still moves the sample points.
INPUTS = {
    "trained_b1": (1, 16, 16),
    "trained_b3": (3, 16, 16),
    "wide_b2": (2, 24, 20),
    "skewed_b1": (1, 8, 32),
    "thin_b1": (1, 4, 8),
    "half_trained_b1": (1, 16, 24),
}

OFFSETS = (0.0, 0.1)


def rnd(*shape, std=1.0, mean=0.0):
    return torch.randn(*shape) * std + mean


def make_weights(spec):
    d = EMBED_DIM
    w = {
        "cls_token": rnd(1, 1, d, std=0.5),
        "pos_embed": rnd(1, 1 + GRID * GRID, d, std=0.5),
        "patch_embed.proj.weight": rnd(d, 3, PATCH, PATCH, std=(3 * PATCH * PATCH) ** -0.5),
        "patch_embed.proj.bias": rnd(d, std=0.1),
    }
    if spec["mask_token"]:
        w["mask_token"] = torch.zeros(1, d)
    if spec["registers"]:
        w["register_tokens"] = rnd(1, spec["registers"], d, std=0.5)
    for i in range(DEPTH):
        b = f"blocks.{i}."
        w[b + "norm1.weight"] = rnd(d, std=0.2, mean=1.0)
        w[b + "norm1.bias"] = rnd(d, std=0.1)
        w[b + "attn.qkv.weight"] = rnd(3 * d, d, std=d ** -0.5)
        w[b + "attn.qkv.bias"] = rnd(3 * d, std=0.1)
        w[b + "attn.proj.weight"] = rnd(d, d, std=d ** -0.5)
        w[b + "attn.proj.bias"] = rnd(d, std=0.1)
        w[b + "norm2.weight"] = rnd(d, std=0.2, mean=1.0)
        w[b + "norm2.bias"] = rnd(d, std=0.1)
        if spec["layerscale"]:
            # Not DINOv2's 1e-5 init: gammas of order 1 keep every branch visible in the output.
            w[b + "ls1.gamma"] = rnd(d, std=0.3, mean=0.7)
            w[b + "ls2.gamma"] = rnd(d, std=0.3, mean=0.7)
        if spec["ffn"] == "mlp":
            w[b + "mlp.fc1.weight"] = rnd(MLP_HIDDEN, d, std=d ** -0.5)
            w[b + "mlp.fc1.bias"] = rnd(MLP_HIDDEN, std=0.1)
            w[b + "mlp.fc2.weight"] = rnd(d, MLP_HIDDEN, std=MLP_HIDDEN ** -0.5)
            w[b + "mlp.fc2.bias"] = rnd(d, std=0.1)
        else:
            w[b + "mlp.w12.weight"] = rnd(2 * SWIGLU_HIDDEN, d, std=d ** -0.5)
            w[b + "mlp.w12.bias"] = rnd(2 * SWIGLU_HIDDEN, std=0.1)
            w[b + "mlp.w3.weight"] = rnd(d, SWIGLU_HIDDEN, std=SWIGLU_HIDDEN ** -0.5)
            w[b + "mlp.w3.bias"] = rnd(d, std=0.1)
    w["norm.weight"] = rnd(d, std=0.2, mean=1.0)
    w["norm.bias"] = rnd(d, std=0.1)
    return w


def interpolate_pos_encoding(pos_embed, npatch, height, width, offset):
    n = pos_embed.shape[1] - 1
    if npatch == n and height == width:
        return pos_embed
    class_pos = pos_embed[:, 0]
    patch_pos = pos_embed[:, 1:]
    h0, w0 = height // PATCH, width // PATCH
    m = int(math.sqrt(n))
    if offset:
        kwargs = {"scale_factor": (float(h0 + offset) / m, float(w0 + offset) / m)}
    else:
        kwargs = {"size": (h0, w0)}
    patch_pos = F.interpolate(
        patch_pos.reshape(1, m, m, EMBED_DIM).permute(0, 3, 1, 2), mode="bicubic", antialias=False, **kwargs
    )
    assert tuple(patch_pos.shape[-2:]) == (h0, w0)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, EMBED_DIM)
    return torch.cat((class_pos.unsqueeze(0), patch_pos), dim=1)


def attention(w, b, x):
    batch, n, c = x.shape
    hd = c // NUM_HEADS
    qkv = F.linear(x, w[b + "qkv.weight"], w[b + "qkv.bias"])
    qkv = qkv.reshape(batch, n, 3, NUM_HEADS, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * hd ** -0.5, qkv[1], qkv[2]
    attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
    x = (attn @ v).transpose(1, 2).reshape(batch, n, c)
    return F.linear(x, w[b + "proj.weight"], w[b + "proj.bias"])


def ffn(w, b, x, kind):
    if kind == "mlp":
        x = F.gelu(F.linear(x, w[b + "fc1.weight"], w[b + "fc1.bias"]))
        return F.linear(x, w[b + "fc2.weight"], w[b + "fc2.bias"])
    x1, x2 = F.linear(x, w[b + "w12.weight"], w[b + "w12.bias"]).chunk(2, dim=-1)
    return F.linear(F.silu(x1) * x2, w[b + "w3.weight"], w[b + "w3.bias"])


def layer_scale(w, key, x):
    return x * w[key] if key in w else x


def forward(w, spec, images, offset):
    batch, _, height, width = images.shape
    d = EMBED_DIM
    x = F.conv2d(images, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=PATCH)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat((w["cls_token"].expand(batch, -1, -1), x), dim=1)
    x = x + interpolate_pos_encoding(w["pos_embed"], x.shape[1] - 1, height, width, offset)
    r = spec["registers"]
    if r:
        x = torch.cat((x[:, :1], w["register_tokens"].expand(batch, -1, -1), x[:, 1:]), dim=1)
    for i in range(DEPTH):
        b = f"blocks.{i}."
        h = F.layer_norm(x, (d,), w[b + "norm1.weight"], w[b + "norm1.bias"], LN_EPS)
        x = x + layer_scale(w, b + "ls1.gamma", attention(w, b + "attn.", h))
        h = F.layer_norm(x, (d,), w[b + "norm2.weight"], w[b + "norm2.bias"], LN_EPS)
        x = x + layer_scale(w, b + "ls2.gamma", ffn(w, b + "mlp.", h, spec["ffn"]))
    x = F.layer_norm(x, (d,), w["norm.weight"], w["norm.bias"], LN_EPS)
    return x[:, 0], x[:, 1 + r:]


class Blob:
    def __init__(self):
        self.parts, self.size = [], 0

    def add(self, tensor):
        data = np.ascontiguousarray(tensor.detach().numpy(), dtype="<f4")
        entry = {"offset": self.size, "shape": list(data.shape)}
        self.parts.append(data.tobytes())
        self.size += data.nbytes
        return entry


def main():
    torch.manual_seed(20240611)
    blob = Blob()
    manifest = {
        "generator": f"make_fixtures.py with torch {torch.__version__}",
        "embed_dim": EMBED_DIM,
        "depth": DEPTH,
        "num_heads": NUM_HEADS,
        "patch_size": PATCH,
        "image_size": IMAGE,
        "models": {},
        "inputs": {},
        "cases": [],
    }
    images = {name: rnd(b, 3, h, wd) for name, (b, h, wd) in INPUTS.items()}
    for name, image in images.items():
        manifest["inputs"][name] = blob.add(image)

    with torch.no_grad():
        for model, spec in MODELS.items():
            w = make_weights(spec)
            manifest["models"][model] = {
                "ffn": spec["ffn"],
                "num_register_tokens": spec["registers"],
                "weights": {key: blob.add(value) for key, value in w.items()},
            }
            for input_name, image in images.items():
                for offset in OFFSETS:
                    cls, patches = forward(w, spec, image, offset)
                    manifest["cases"].append({
                        "model": model,
                        "input": input_name,
                        "interpolate_offset": offset,
                        "output": blob.add(cls),
                        "patch_tokens": blob.add(patches),
                    })

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "fixtures.bin"), "wb") as f:
        f.write(b"".join(blob.parts))
    with open(os.path.join(here, "fixtures.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"{len(manifest['cases'])} cases, {blob.size} bytes")


if __name__ == "__main__":
    main()
