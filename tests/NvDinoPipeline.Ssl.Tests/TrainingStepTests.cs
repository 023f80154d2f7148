using NvDinoPipeline.Ssl.Heads;
using NvDinoPipeline.Ssl.Losses;
using NvDinoPipeline.Ssl.Masking;
using NvDinoPipeline.Ssl.Optimization;
using NvDinoPipeline.Ssl.Schedules;
using NvDinoPipeline.Ssl.Teacher;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

/// <summary>The pieces composed as DINOv2's forward_backward, with a linear map standing in for the backbone.</summary>
public sealed class TrainingStepTests
{
    [Fact]
    public void Dino_ibot_and_koleo_steps_bring_the_student_closer_to_the_teacher_which_follows_by_ema()
    {
        torch.manual_seed(0);
        const int batch = 4, globalCrops = 2, localCrops = 2, dim = 16, prototypes = 32, patches = 9;
        var random = new Random(0);
        var inputGlobal = torch.randn(globalCrops * batch, patches + 1, dim);
        var inputLocal = torch.randn(localCrops * batch, dim);

        using var studentBackbone = nn.Linear(dim, dim);
        using var teacherBackbone = nn.Linear(dim, dim);
        using var studentDino = new DinoHead(dim, prototypes, hiddenDim: 24, bottleneckDim: 8);
        using var teacherDino = new DinoHead(dim, prototypes, hiddenDim: 24, bottleneckDim: 8);
        using var studentIbot = new DinoHead(dim, prototypes, hiddenDim: 24, bottleneckDim: 8);
        using var teacherIbot = new DinoHead(dim, prototypes, hiddenDim: 24, bottleneckDim: 8);
        TeacherEma.CopyFrom(teacherBackbone, studentBackbone);
        TeacherEma.CopyFrom(teacherDino, studentDino);
        TeacherEma.CopyFrom(teacherIbot, studentIbot);

        using var dinoLoss = new DinoLoss(prototypes);
        using var ibotLoss = new IbotPatchLoss(prototypes);
        var groups = ParamGroups.WithDecay(studentBackbone.named_parameters(), numBlocks: 0)
            .Concat(ParamGroups.WithDecay(studentDino.named_parameters(), numBlocks: 0))
            .Concat(ParamGroups.WithDecay(studentIbot.named_parameters(), numBlocks: 0));
        using var optimizer = new ScheduledAdamW(ParamGroups.Fuse(groups));
        var schedules = SslSchedules.Create(new SslScheduleOptions
        {
            Lr = 1e-2, MinLr = 1e-3, Epochs = 2, WarmupEpochs = 0, WeightDecay = 0.04, WeightDecayEnd = 0.2,
            MomentumTeacher = 0.99, FinalMomentumTeacher = 1.0, TeacherTemp = 0.07, WarmupTeacherTemp = 0.07,
            WarmupTeacherTempEpochs = 1, FreezeLastLayerEpochs = 0,
        }, iterationsPerEpoch: 10);
        var maskGenerator = new MaskingGenerator(3, 3, minNumPatches: 1);

        var losses = new List<float>();
        var divergences = new List<float>();
        for (var iteration = 0; iteration < 20; iteration++)
        {
            using var scope = torch.NewDisposeScope();
            var s = schedules.At(iteration);
            optimizer.ApplySchedules(s.Lr, s.WeightDecay, s.LastLayerLr);
            using var masks = MaskCollator.Collate(globalCrops * batch, maskGenerator, 0.1, 0.5, 0.5, random);

            Tensor teacherCls, teacherMasked;
            using (torch.no_grad())
            {
                var tokens = teacherBackbone.forward(inputGlobal);
                var patchTokens = tokens.narrow(1, 1, patches).flatten(0, 1).index_select(0, masks.MaskIndices);
                teacherCls = dinoLoss.TeacherTargets(teacherDino.forward(tokens.select(1, 0)), s.TeacherTemp, TeacherCentering.Softmax);
                teacherMasked = ibotLoss.TeacherTargets(teacherIbot.forward(patchTokens), s.TeacherTemp, TeacherCentering.Softmax);
            }

            var studentTokens = studentBackbone.forward(inputGlobal);
            var studentCls = studentTokens.select(1, 0);
            var studentMasked = studentTokens.narrow(1, 1, patches).flatten(0, 1).index_select(0, masks.MaskIndices);
            var dino = dinoLoss.MultiCropLoss(studentDino.forward(studentCls), studentDino.forward(studentBackbone.forward(inputLocal)), teacherCls);
            var ibot = ibotLoss.ForwardMasked(studentIbot.forward(studentMasked), teacherMasked, masks.Masks, masks.MasksWeight);
            var koleo = 0.1 * KoLeoLoss.PerGlobalCrop(studentCls);
            var total = dino.Total() + ibot + koleo;

            optimizer.ZeroGrad();
            total.backward();
            optimizer.Step();
            var before = teacherBackbone.weight!.clone();
            TeacherEma.Update(teacherBackbone, studentBackbone, s.TeacherMomentum);
            TeacherEma.Update(teacherDino, studentDino, s.TeacherMomentum);
            TeacherEma.Update(teacherIbot, studentIbot, s.TeacherMomentum);
            var expected = s.TeacherMomentum * before + (1 - s.TeacherMomentum) * studentBackbone.weight!;
            Assert.True(teacherBackbone.weight!.allclose(expected, rtol: 0, atol: 1e-6));
            losses.Add(total.item<float>());
            // The global DINO term minus the teacher's entropy is the student's KL divergence from the teacher.
            var teacherEntropy = -(teacherCls * teacherCls.clamp_min(1e-12).log()).sum(-1).mean() * globalCrops / (globalCrops * (globalCrops - 1) + globalCrops * localCrops);
            divergences.Add((dino.GlobalCrops - teacherEntropy).item<float>());
        }

        Assert.All(losses, l => Assert.True(float.IsFinite(l)));
        Assert.True(divergences.TakeLast(3).Average() < 0.5 * divergences.Take(3).Average(), $"divergences {string.Join(", ", divergences)}");
    }
}
