#!/usr/bin/python3
"""TAO-named checkpoints of the vit_swiglu_reg4 fixture backbone (same weights, TAO's names).

TAO's NVDINOv2 backbone (nvidia_tao_pytorch/ssl/nvdinov2/model/vit.py) is timm's VisionTransformer with
SwiGLUFused, a timm GluMlp(gate_last=False): its fused input projection is `mlp.fc1` and its output projection
`mlp.fc2`, where DINOv2's SwiGLUFFNFused calls them `mlp.w12` and `mlp.w3`. Both compute
out(act(x1) * x2) with x1, x2 = in(x).chunk(2), so the tensors carry over unchanged (no half swap).
Every other backbone key (cls_token, pos_embed, register_tokens, mask_token, patch_embed.proj, blocks.<i>.norm1,
attn.qkv, attn.proj, ls1.gamma, norm2, ls2.gamma, norm) is named alike.

TAO's Lightning module holds `student`, `teacher` (and `student_ema` when distilling) ModuleDicts of
`backbone`, `dino_head`, `ibot_head`; its .ckpt is {"state_dict": {"teacher.backbone.<key>": ...}, "epoch": ...}.
Its callback also writes teacher_*.pth / student_*.pth: plain backbone state dicts with the same TAO names.

Run after make_fixtures.py with Debian's interpreter (torch 1.13):  /usr/bin/python3 make_tao_fixtures.py
"""
import os
from collections import OrderedDict

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def tao_name(key):
    return key.replace(".mlp.w12.", ".mlp.fc1.").replace(".mlp.w3.", ".mlp.fc2.")


def check_same_ffn(sd):
    """timm GluMlp(gate_last=False) on the renamed tensors equals DINOv2's SwiGLU on the originals."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, sd["blocks.0.mlp.w3.weight"].shape[0], generator=gen)
    x1, x2 = F.linear(x, sd["blocks.0.mlp.w12.weight"], sd["blocks.0.mlp.w12.bias"]).chunk(2, dim=-1)
    dinov2 = F.linear(F.silu(x1) * x2, sd["blocks.0.mlp.w3.weight"], sd["blocks.0.mlp.w3.bias"])
    tao = {tao_name(k): v for k, v in sd.items()}
    h1, h2 = F.linear(x, tao["blocks.0.mlp.fc1.weight"], tao["blocks.0.mlp.fc1.bias"]).chunk(2, dim=-1)
    timm = F.linear(F.silu(h1) * h2, tao["blocks.0.mlp.fc2.weight"], tao["blocks.0.mlp.fc2.bias"])
    assert torch.equal(dinov2, timm)


def main():
    sd = torch.load(os.path.join(HERE, "vit_swiglu_reg4.pth"))
    check_same_ffn(sd)
    gen = torch.Generator().manual_seed(20241203)

    state = OrderedDict()
    for key, value in sd.items():
        state["student.backbone." + tao_name(key)] = value + 1.0
    state["student.dino_head.mlp.0.weight"] = torch.randn(8, 16, generator=gen)
    for key, value in sd.items():
        state["teacher.backbone." + tao_name(key)] = value.clone()
    state["teacher.dino_head.mlp.0.weight"] = torch.randn(8, 16, generator=gen)
    state["teacher.ibot_head.mlp.0.weight"] = torch.randn(8, 16, generator=gen)
    checkpoint = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": state,
        "loops": {},
        "optimizer_states": [],
        "lr_schedulers": [],
    }
    torch.save(checkpoint, os.path.join(HERE, "tao_nvdinov2_swiglu_reg4.ckpt"))

    # What TAO's checkpoint callback writes beside the .ckpt: the teacher backbone alone, TAO names, no prefix.
    teacher = OrderedDict((tao_name(k), v.clone()) for k, v in sd.items())
    torch.save(teacher, os.path.join(HERE, "tao_nvdinov2_teacher_swiglu_reg4.pth"))


if __name__ == "__main__":
    main()
