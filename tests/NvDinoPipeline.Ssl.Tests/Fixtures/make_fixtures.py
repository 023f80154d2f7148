#!/usr/bin/python3
"""Reference numbers for NvDinoPipeline.Ssl tests.

Re-implements the DINOv2 recipe maths (facebookresearch/dinov2: loss/dino_clstoken_loss.py,
loss/ibot_patch_loss.py, loss/koleo_loss.py, layers/dino_head.py, utils/utils.py CosineScheduler,
utils/param_groups.py, train/ssl_meta_arch.py) in PyTorch on small fixed inputs, and runs
torchvision's tensor image functions, then writes the inputs and outputs as JSON next to this file.

Run with Debian's interpreter (python3-torch 1.13, python3-torchvision 0.14):
    /usr/bin/python3 tests/NvDinoPipeline.Ssl.Tests/Fixtures/make_fixtures.py
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import weight_norm

OUT = os.path.dirname(os.path.abspath(__file__))


def t2j(t):
    t = t.detach()
    if t.dtype == torch.bool:
        return {"shape": list(t.shape), "data": [bool(v) for v in t.flatten().tolist()]}
    # 9 significant digits hold every float32 exactly.
    return {"shape": list(t.shape), "data": [float("%.9g" % v) for v in t.double().flatten().tolist()]}


def write(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


# ---------------------------------------------------------------- losses (DINOv2 formulas)

class DinoLossRef:
    """DINOLoss with DINOv2's deferred center update (applied at the next softmax_center_teacher)."""

    def __init__(self, out_dim, student_temp=0.1, center_momentum=0.9):
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.center = torch.zeros(1, out_dim)
        self.pending = None

    def apply_center_update(self):
        if self.pending is not None:
            batch_sum, n = self.pending
            self.center = self.center * self.center_momentum + (batch_sum / n) * (1 - self.center_momentum)
            self.pending = None

    def softmax_center_teacher(self, teacher_output, teacher_temp):
        self.apply_center_update()
        return F.softmax((teacher_output - self.center) / teacher_temp, dim=-1)

    def update_center(self, teacher_output):
        self.pending = (torch.sum(teacher_output, dim=0, keepdim=True), len(teacher_output))

    @staticmethod
    def sinkhorn_knopp_teacher(teacher_output, teacher_temp, n_iterations=3):
        Q = torch.exp(teacher_output.float() / teacher_temp).t()
        B = Q.shape[1]
        K = Q.shape[0]
        Q /= torch.sum(Q)
        for _ in range(n_iterations):
            Q /= torch.sum(Q, dim=1, keepdim=True)
            Q /= K
            Q /= torch.sum(Q, dim=0, keepdim=True)
            Q /= B
        Q *= B
        return Q.t()

    def forward(self, student_output_list, teacher_list):
        total = 0
        for s in student_output_list:
            lsm = F.log_softmax(s / self.student_temp, dim=-1)
            for t in teacher_list:
                total -= torch.sum(t * lsm, dim=-1).mean()
        return total


def dino_multicrop(loss, student_global, student_local, teacher_cls_after_head, teacher_temp, n_local, centering):
    """The DINO part of SSLMetaArch.forward_backward: teacher chunks swapped so crop A meets crop B."""
    n_global = 2
    chunks = teacher_cls_after_head.chunk(n_global)
    swapped = torch.cat((chunks[1], chunks[0]))
    if centering == "centering":
        probs = loss.softmax_center_teacher(swapped, teacher_temp).view(n_global, -1, swapped.shape[-1])
        loss.update_center(swapped)
    else:
        probs = loss.sinkhorn_knopp_teacher(swapped, teacher_temp).view(n_global, -1, swapped.shape[-1])
    n_local_terms = max(n_local * n_global, 1)
    n_global_terms = (n_global - 1) * n_global
    local_loss = loss.forward(student_local.chunk(n_local), probs) / (n_global_terms + n_local_terms)
    global_loss = loss.forward([student_global], [probs.flatten(0, 1)]) * 2 / (n_global_terms + n_local_terms)
    # Teacher targets back in crop order (DINOv2 holds them swapped).
    flat = probs.flatten(0, 1).chunk(n_global)
    probs_crop_order = torch.cat((flat[1], flat[0]))
    return probs_crop_order, local_loss, global_loss


def ibot_lossfunc(t, s, temp):
    return torch.sum(t * F.log_softmax(s / temp, dim=-1), dim=-1)


class IbotLossRef:
    def __init__(self, patch_out_dim, student_temp=0.1, center_momentum=0.9):
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.center = torch.zeros(1, 1, patch_out_dim)
        self.pending = None

    def apply_center_update(self):
        if self.pending is not None:
            batch_sum, n = self.pending
            self.center = self.center * self.center_momentum + (batch_sum / n) * (1 - self.center_momentum)
            self.pending = None

    def softmax_center_teacher(self, teacher_patch_tokens, teacher_temp):
        self.apply_center_update()
        return F.softmax((teacher_patch_tokens - self.center) / teacher_temp, dim=-1)

    def update_center(self, teacher_patch_tokens):
        self.pending = (torch.sum(teacher_patch_tokens.mean(1), dim=0, keepdim=True), len(teacher_patch_tokens))

    @staticmethod
    def sinkhorn_knopp_teacher(teacher_output, teacher_temp, n_masked_patches, n_iterations=3):
        Q = torch.exp(teacher_output.float() / teacher_temp).t()
        B = n_masked_patches
        K = Q.shape[0]
        Q /= torch.sum(Q)
        for _ in range(n_iterations):
            Q /= torch.sum(Q, dim=1, keepdim=True)
            Q /= K
            Q /= torch.sum(Q, dim=0, keepdim=True)
            Q /= B
        Q *= B
        return Q.t()

    def forward(self, student_patch_tokens, teacher_patch_tokens, student_masks_flat):
        loss = torch.sum(teacher_patch_tokens * F.log_softmax(student_patch_tokens / self.student_temp, dim=-1), dim=-1)
        loss = torch.sum(loss * student_masks_flat.float(), dim=-1) / student_masks_flat.sum(dim=-1).clamp(min=1.0)
        return -loss.mean()

    def forward_masked(self, s, t, student_masks_flat, n_masked_patches=None, masks_weight=None):
        loss = ibot_lossfunc(t, s, self.student_temp)
        if masks_weight is None:
            masks_weight = (
                (1 / student_masks_flat.sum(-1).clamp(min=1.0)).unsqueeze(-1).expand_as(student_masks_flat)[student_masks_flat]
            )
        if n_masked_patches is not None:
            loss = loss[:n_masked_patches]
        loss = loss * masks_weight
        return -loss.sum() / student_masks_flat.shape[0]


def koleo(student_output, eps=1e-8):
    pdist = nn.PairwiseDistance(2, eps=1e-8)
    x = F.normalize(student_output, eps=eps, p=2, dim=-1)
    dots = torch.mm(x, x.t())
    n = x.shape[0]
    dots.view(-1)[:: (n + 1)].fill_(-1)
    _, I = torch.max(dots, dim=1)
    distances = pdist(x, x[I])
    return -torch.log(distances + eps).mean()


def make_losses():
    g = torch.Generator().manual_seed(1234)
    K, B, n_local = 16, 3, 2
    student_global = torch.randn(2 * B, K, generator=g) * 0.8
    student_local = torch.randn(n_local * B, K, generator=g) * 0.8
    teacher1 = torch.randn(2 * B, K, generator=g) * 0.5
    teacher2 = torch.randn(2 * B, K, generator=g) * 0.5
    temp1, temp2 = 0.04, 0.055

    # Softmax centering, two iterations so the second uses the updated center.
    ref = DinoLossRef(K)
    p1, l1, g1 = dino_multicrop(ref, student_global, student_local, teacher1, temp1, n_local, "centering")
    p2, l2, g2 = dino_multicrop(ref, student_global, student_local, teacher2, temp2, n_local, "centering")
    ref.apply_center_update()
    center_after_two = ref.center.clone()

    sk = DinoLossRef(K)
    ps, ls, gs = dino_multicrop(sk, student_global, student_local, teacher1, temp1, n_local, "sinkhorn_knopp")

    # Plain cross-entropy (forward) on two student chunks and two teacher chunks.
    ce = DinoLossRef(K).forward(student_global.chunk(2), p1.chunk(2))

    dino = {
        "K": K, "B": B, "n_local": n_local, "student_temp": 0.1, "center_momentum": 0.9,
        "student_global": t2j(student_global), "student_local": t2j(student_local),
        "teacher1": t2j(teacher1), "teacher2": t2j(teacher2), "teacher_temp1": temp1, "teacher_temp2": temp2,
        "softmax_probs1": t2j(p1), "softmax_local1": float(l1), "softmax_global1": float(g1),
        "softmax_probs2": t2j(p2), "softmax_local2": float(l2), "softmax_global2": float(g2),
        "center_after_two": t2j(center_after_two),
        "sinkhorn_probs": t2j(ps), "sinkhorn_local": float(ls), "sinkhorn_global": float(gs),
        "cross_entropy_global_chunks_vs_probs1_chunks": float(ce),
    }

    # iBOT: 4 global crops of 3x3 patches; one crop unmasked.
    Bi, N = 4, 9
    masks = torch.zeros(Bi, N, dtype=torch.bool)
    masks[0, [0, 1, 3, 4]] = True
    masks[1, [2, 5, 8]] = True
    masks[3, [0, 1, 2, 3, 4, 5, 6]] = True
    M = int(masks.sum())
    s_masked = torch.randn(M, K, generator=g) * 0.8
    t_masked = torch.randn(M, K, generator=g) * 0.5
    t_masked2 = torch.randn(M, K, generator=g) * 0.5
    masks_weight = (1 / masks.sum(-1).clamp(min=1.0)).unsqueeze(-1).expand_as(masks)[masks]

    ib = IbotLossRef(K)
    # DINOv2 centering path: the masked tokens are unsqueezed to [1, M, K].
    tp1 = ib.softmax_center_teacher(t_masked.unsqueeze(0), temp1).squeeze(0)
    ib.update_center(t_masked.unsqueeze(0))
    loss1 = ib.forward_masked(s_masked, tp1, masks, n_masked_patches=M, masks_weight=masks_weight) * 2 * 0.5
    tp2 = ib.softmax_center_teacher(t_masked2.unsqueeze(0), temp2).squeeze(0)
    ib.update_center(t_masked2.unsqueeze(0))
    ib.apply_center_update()
    ibot_center_after_two = ib.center.clone()
    loss_default_weights = ib.forward_masked(s_masked, tp1, masks)

    tps = IbotLossRef.sinkhorn_knopp_teacher(t_masked, temp1, M)
    loss_sk = ib.forward_masked(s_masked, tps, masks, n_masked_patches=M, masks_weight=masks_weight)

    s_dense = torch.randn(Bi, N, K, generator=g) * 0.8
    t_dense = F.softmax(torch.randn(Bi, N, K, generator=g) / 0.3, dim=-1)
    loss_dense = ib.forward(s_dense, t_dense, masks)

    ibot = {
        "K": K, "B": Bi, "N": N, "masks": t2j(masks), "masks_weight": t2j(masks_weight),
        "student_masked": t2j(s_masked), "teacher_masked1": t2j(t_masked), "teacher_masked2": t2j(t_masked2),
        "teacher_temp1": temp1, "teacher_temp2": temp2,
        "softmax_probs1": t2j(tp1), "softmax_probs2": t2j(tp2), "loss1": float(loss1),
        "center_after_two": t2j(ibot_center_after_two), "loss_default_weights": float(loss_default_weights),
        "sinkhorn_probs": t2j(tps), "sinkhorn_loss": float(loss_sk),
        "student_dense": t2j(s_dense), "teacher_dense": t2j(t_dense), "dense_loss": float(loss_dense),
    }

    x = torch.randn(5, 8, generator=g)
    x_dup = x.clone()
    x_dup[3] = x_dup[1] * 2.5  # same direction: distance 0 after normalisation
    kol = {
        "x": t2j(x), "loss": float(koleo(x)),
        "x_dup": t2j(x_dup), "loss_dup": float(koleo(x_dup)),
    }

    write("losses.json", {"dino": dino, "ibot": ibot, "koleo": kol})


# ---------------------------------------------------------------- DINO head

class DINOHeadRef(nn.Module):
    def __init__(self, in_dim, out_dim, nlayers=3, hidden_dim=2048, bottleneck_dim=256):
        super().__init__()
        layers = [nn.Linear(in_dim, hidden_dim), nn.GELU()]
        for _ in range(nlayers - 2):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.GELU()]
        layers.append(nn.Linear(hidden_dim, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)

    def forward(self, x):
        x = self.mlp(x)
        x = nn.functional.normalize(x, dim=-1, p=2, eps=1e-12)
        return self.last_layer(x)


def make_head():
    torch.manual_seed(7)
    head = DINOHeadRef(6, 7, nlayers=3, hidden_dim=8, bottleneck_dim=5)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        head.last_layer.weight_g.fill_(1)
    x = torch.randn(3, 6)
    y = head(x)
    state = {k: t2j(v) for k, v in head.state_dict().items()}
    write("head.json", {"in_dim": 6, "out_dim": 7, "nlayers": 3, "hidden_dim": 8, "bottleneck_dim": 5,
                        "state": state, "x": t2j(x), "y": t2j(y)})


# ---------------------------------------------------------------- schedules

class CosineSchedulerRef:
    def __init__(self, base_value, final_value, total_iters, warmup_iters=0, start_warmup_value=0, freeze_iters=0):
        self.final_value = final_value
        self.total_iters = total_iters
        freeze_schedule = np.zeros((freeze_iters))
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)
        iters = np.arange(total_iters - warmup_iters - freeze_iters)
        schedule = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / len(iters)))
        self.schedule = np.concatenate((freeze_schedule, warmup_schedule, schedule))
        assert len(self.schedule) == self.total_iters

    def __getitem__(self, it):
        return self.final_value if it >= self.total_iters else float(self.schedule[it])


def make_schedules():
    cases = []

    def add(name, kwargs, its, zero_prefix=0):
        s = CosineSchedulerRef(**kwargs)
        if zero_prefix:
            s.schedule[:zero_prefix] = 0
        cases.append({"name": name, "args": kwargs, "zero_prefix": zero_prefix,
                      "iterations": its, "values": [float(s[i]) for i in its]})

    # Epoch length 10, 10 epochs, 2 warm-up epochs; NVDINOv2-like values.
    lr = 2e-4 * math.sqrt(64 * 8 * 2 / 1024)
    its = [0, 1, 5, 19, 20, 21, 50, 77, 99, 100, 250]
    add("lr", dict(base_value=lr, final_value=1e-6, total_iters=100, warmup_iters=20, start_warmup_value=0), its)
    add("weight_decay", dict(base_value=0.04, final_value=0.2, total_iters=100), its)
    add("teacher_momentum", dict(base_value=0.994, final_value=1.0, total_iters=100), its)
    add("teacher_temp", dict(base_value=0.07, final_value=0.07, total_iters=30, warmup_iters=30, start_warmup_value=0.04),
        [0, 1, 10, 28, 29, 30, 99])
    add("last_layer_lr", dict(base_value=lr, final_value=1e-6, total_iters=100, warmup_iters=20, start_warmup_value=0),
        its, zero_prefix=10)
    add("freeze_and_warmup", dict(base_value=1.0, final_value=0.0, total_iters=50, warmup_iters=5,
                                  start_warmup_value=0.1, freeze_iters=3), list(range(0, 50, 3)) + [49, 50])
    add("single_warmup_iteration", dict(base_value=0.5, final_value=0.1, total_iters=4, warmup_iters=1,
                                        start_warmup_value=0.2), [0, 1, 2, 3, 4])

    scaling = [{"base_lr": 2e-4, "batch": b, "gpus": gp, "nodes": nd,
                "lr": 2e-4 * math.sqrt(b * gp * nd / 1024.0)} for (b, gp, nd) in [(64, 8, 2), (16, 1, 1), (1024, 1, 1)]]
    write("schedules.json", {"cases": cases, "scaling": scaling, "scaled_lr": lr})


# ---------------------------------------------------------------- parameter groups

def get_vit_lr_decay_rate(name, lr_decay_rate=1.0, num_layers=12, force_is_backbone=False, chunked_blocks=False):
    layer_id = num_layers + 1
    if name.startswith("backbone") or force_is_backbone:
        if ".pos_embed" in name or ".patch_embed" in name or ".mask_token" in name or ".cls_token" in name:
            layer_id = 0
        elif force_is_backbone and (
            "pos_embed" in name or "patch_embed" in name or "mask_token" in name or "cls_token" in name
        ):
            layer_id = 0
        elif ".blocks." in name and ".residual." not in name:
            layer_id = int(name[name.find(".blocks."):].split(".")[2]) + 1
        elif chunked_blocks and "blocks." in name and "residual." not in name:
            layer_id = int(name[name.find("blocks."):].split(".")[2]) + 1
        elif "blocks." in name and "residual." not in name:
            layer_id = int(name[name.find("blocks."):].split(".")[1]) + 1
    return lr_decay_rate ** (num_layers + 1 - layer_id)


def groups_with_decay(names, n_blocks, lr_decay_rate, patch_embed_lr_mult):
    out = []
    for name in names:
        rate = get_vit_lr_decay_rate(name, lr_decay_rate, num_layers=n_blocks, force_is_backbone=n_blocks > 0)
        d = {"name": name, "lr_multiplier": rate, "wd_multiplier": 1.0, "is_last_layer": "last_layer" in name}
        if name.endswith(".bias") or "norm" in name or "gamma" in name:
            d["wd_multiplier"] = 0.0
        if "patch_embed" in name:
            d["lr_multiplier"] = d["lr_multiplier"] * patch_embed_lr_mult
        out.append(d)
    return out


def make_param_groups():
    backbone = ["cls_token", "pos_embed", "mask_token", "register_tokens",
                "patch_embed.proj.weight", "patch_embed.proj.bias"]
    for i in range(12):
        backbone += [f"blocks.{i}.norm1.weight", f"blocks.{i}.norm1.bias", f"blocks.{i}.attn.qkv.weight",
                     f"blocks.{i}.attn.qkv.bias", f"blocks.{i}.ls1.gamma", f"blocks.{i}.mlp.fc2.weight"]
    backbone += ["norm.weight", "norm.bias"]
    head = ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.4.weight", "mlp.4.bias", "last_layer.weight_v"]
    prefixed = ["backbone.blocks.3.attn.qkv.weight", "backbone.patch_embed.proj.weight", "backbone.norm.weight",
                "dino_head.mlp.0.weight", "backbone.blocks.0.5.mlp.fc1.weight"]
    write("param_groups.json", {
        "layerwise_decay": 0.9, "patch_embed_lr_mult": 0.2,
        "backbone": groups_with_decay(backbone, 12, 0.9, 0.2),
        "head": groups_with_decay(head, 0, 0.9, 0.2),
        "rates_without_force": [{"name": n, "rate": get_vit_lr_decay_rate(n, 0.9, 12)} for n in prefixed],
        "rates_chunked": [{"name": "blocks.0.5.mlp.fc1.weight",
                           "rate": get_vit_lr_decay_rate("blocks.0.5.mlp.fc1.weight", 0.9, 12, True, True)}],
    })


# ---------------------------------------------------------------- torchvision image functions

def make_image_ops():
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    g = torch.Generator().manual_seed(99)
    img = torch.rand(3, 12, 10, generator=g)
    img[:, 0, 0] = 0.5  # a gray pixel: hue undefined
    out = {
        "image": t2j(img),
        "brightness_1_3": t2j(TF.adjust_brightness(img, 1.3)),
        "contrast_0_7": t2j(TF.adjust_contrast(img, 0.7)),
        "saturation_1_5": t2j(TF.adjust_saturation(img, 1.5)),
        "hue_0_08": t2j(TF.adjust_hue(img, 0.08)),
        "hue_minus_0_3": t2j(TF.adjust_hue(img, -0.3)),
        "grayscale3": t2j(TF.rgb_to_grayscale(img, num_output_channels=3)),
        "blur_9_1_3": t2j(TF.gaussian_blur(img, [9, 9], [1.3, 1.3])),
        "solarize_128": t2j(TF.solarize(img, 128 / 255)),
        "hflip": t2j(TF.hflip(img)),
        "normalize": t2j(TF.normalize(img, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])),
        "resized_crop_down": t2j(TF.resized_crop(img, 2, 1, 8, 7, [6, 6], InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)),
        "resized_crop_up": t2j(TF.resized_crop(img, 3, 2, 5, 6, [16, 16], InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)),
    }
    write("image_ops.json", out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    make_losses()
    make_head()
    make_schedules()
    make_param_groups()
    make_image_ops()
    print("fixtures written to", OUT)
