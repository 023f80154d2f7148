"""A peer for the training benchmark: the same DINOv2 self-distillation step in Debian's PyTorch (python3-torch).

Student and teacher are DINOv2-style ViTs (patch embedding, class token, position embedding interpolated for the
local crops, pre-norm blocks with LayerScale unless --no-layerscale, GELU MLP of 4x width, stochastic depth on the student) with separate
DINO and iBOT heads (MLP of num_layers, L2-normalised bottleneck, weight-normalised prototypes). One step:
the teacher embeds the 2 global crops (no gradient, softmax centering); the student embeds the global crops with
iBOT masks (half of them masked at a ratio drawn from 0.1-0.5) and the local crops; the loss is DINO on every
student crop against the other global crops' teacher targets, iBOT on the masked patches and KoLeo on the global
class tokens; then gradient clipping at 3, AdamW, and the teacher's EMA update. The weights are random; the crops
are random pixels (the benchmark measures the step, not the loader). It waits on stdin: each line "N" runs
ceil(N / batch) steps and answers one line with the images per second.

    python3 ssl_step.py --dim 384 --depth 12 --heads 6 --side 224 --local-side 98 --locals 8 --batch 8 --prototypes 131072
"""
import argparse
import math

import torch
from torch import nn
from torch.nn import functional as F

from dinov2_peer import Vit, serve


class Head(nn.Module):
    def __init__(self, dim, prototypes, layers, hidden, bottleneck):
        super().__init__()
        sizes = [dim] + [hidden] * (layers - 1) + [bottleneck]
        mlp = []
        for i in range(layers):
            mlp.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < layers - 1:
                mlp.append(nn.GELU())
        self.mlp = nn.Sequential(*mlp)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, prototypes, bias=False))

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, eps=1e-6))


class Network(nn.Module):
    def __init__(self, args, drop_path):
        super().__init__()
        self.backbone = Vit(args.dim, args.depth, args.heads, args.patch, args.side, drop_path, layerscale=not args.no_layerscale)
        self.dino_head = Head(args.dim, args.prototypes, args.head_layers, args.hidden, args.bottleneck)
        self.ibot_head = Head(args.dim, args.prototypes, args.head_layers, args.hidden, args.bottleneck)


class Step:
    def __init__(self, args):
        self.args = args
        self.student = Network(args, args.drop_path).train()
        self.teacher = Network(args, 0.0).eval()
        self.teacher.load_state_dict(self.student.state_dict())
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.student.parameters(), lr=1e-4, weight_decay=0.04)
        self.dino_center = torch.zeros(1, args.prototypes)
        self.ibot_center = torch.zeros(1, args.prototypes)
        grid = args.side // args.patch
        self.tokens = grid * grid
        self.globals = torch.randn(2 * args.batch, 3, args.side, args.side)
        self.locals = torch.randn(args.locals * args.batch, 3, args.local_side, args.local_side)
        self.autocast = args.precision == "bf16"

    def masks(self):
        masks = torch.zeros(2 * self.args.batch, self.tokens, dtype=torch.bool)
        for i in range(masks.shape[0]):
            if torch.rand(()) < 0.5:
                count = int(self.tokens * (0.1 + 0.4 * torch.rand(()).item()))
                masks[i, torch.randperm(self.tokens)[:count]] = True
        return masks

    def teacher_targets(self, logits, center, temperature=0.07):
        # Softmax centering (DINO): subtract the running center, sharpen, then update the center.
        probabilities = F.softmax((logits - center) / temperature, dim=-1)
        return probabilities, 0.9 * center + 0.1 * logits.mean(0, keepdim=True)

    @staticmethod
    def koleo(cls):
        # KoLeo (DINOv2): the log distance of each class token to its nearest other one, within one global crop's batch.
        normalised = F.normalize(cls, dim=-1, eps=1e-8)
        similarity = normalised @ normalised.t()
        similarity.fill_diagonal_(-2)
        nearest = similarity.max(dim=1).indices
        return -torch.log(F.pairwise_distance(normalised, normalised[nearest]) + 1e-8).mean()

    def run(self):
        args, b = self.args, self.args.batch
        masks = self.masks()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            with torch.no_grad():
                cls, patches = self.teacher.backbone(self.globals)
                teacher_dino, self.dino_center = self.teacher_targets(self.teacher.dino_head(cls).float(), self.dino_center)
                teacher_ibot, self.ibot_center = self.teacher_targets(self.teacher.ibot_head(patches[masks]).float(), self.ibot_center)
            student_cls, student_patches = self.student.backbone(self.globals, masks)
            local_cls, _ = self.student.backbone(self.locals)
            student_dino = self.student.dino_head(torch.cat([student_cls, local_cls])).float() / 0.1
            student_ibot = self.student.ibot_head(student_patches[masks]).float() / 0.1
        teacher_pairs = teacher_dino.chunk(2)
        student_globals = student_dino[: 2 * b].chunk(2)
        student_locals = student_dino[2 * b:].chunk(args.locals)
        log_locals = [F.log_softmax(s, dim=-1) for s in student_locals]
        dino_local = -sum((t * s).sum(-1).mean() for t in teacher_pairs for s in log_locals) / (2 * args.locals)
        dino_global = -((teacher_pairs[0] * F.log_softmax(student_globals[1], -1)).sum(-1).mean()
                        + (teacher_pairs[1] * F.log_softmax(student_globals[0], -1)).sum(-1).mean()) / 2
        ibot = -(teacher_ibot * F.log_softmax(student_ibot, dim=-1)).sum(-1).mean()
        koleo = sum(self.koleo(crop) for crop in student_cls.float().chunk(2))
        loss = dino_local + dino_global + ibot + 0.1 * koleo
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.student.parameters(), 3.0)
        self.optimizer.step()
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.student.parameters()):
                t.mul_(0.994).add_(s.detach(), alpha=0.006)
        return loss.item()


def main():
    parser = argparse.ArgumentParser()
    for name, default in (("dim", 384), ("depth", 12), ("heads", 6), ("patch", 14), ("side", 224), ("local-side", 98), ("locals", 8),
                          ("batch", 8), ("prototypes", 131072), ("head-layers", 3), ("hidden", 2048), ("bottleneck", 384), ("threads", 2)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--drop-path", type=float, default=0.1)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--no-layerscale", action="store_true", help="blocks without LayerScale (model.backbone.layerscale_init null)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    step = Step(args)
    loss = step.run()
    if not math.isfinite(loss):
        raise SystemExit(f"the warm-up step's loss is {loss}")
    serve(f"{args.precision}, ", args.batch, step.run)


if __name__ == "__main__":
    main()
