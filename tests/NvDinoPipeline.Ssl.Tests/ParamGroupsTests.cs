using NvDinoPipeline.Ssl.Optimization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class ParamGroupsTests
{
    private static readonly System.Text.Json.JsonElement Groups = Fixture.Load("param_groups.json");

    private static List<(string name, Parameter parameter)> Named(System.Text.Json.JsonElement list) =>
        list.EnumerateArray().Select(e => (e.GetProperty("name").GetString()!, new Parameter(torch.zeros(2)))).ToList();

    private static void AssertMatchesDinov2(System.Text.Json.JsonElement expected, IReadOnlyList<ParamGroupSpec> actual)
    {
        var want = expected.EnumerateArray().ToList();
        Assert.Equal(want.Count, actual.Count);
        for (var i = 0; i < want.Count; i++)
        {
            var name = want[i].GetProperty("name").GetString();
            Assert.Equal(name, actual[i].Name);
            Assert.True(Math.Abs(want[i].GetProperty("lr_multiplier").GetDouble() - actual[i].LrMultiplier) < 1e-12, $"lr multiplier of {name}");
            Assert.Equal(want[i].GetProperty("wd_multiplier").GetDouble(), actual[i].WdMultiplier);
            Assert.Equal(want[i].GetProperty("is_last_layer").GetBoolean(), actual[i].IsLastLayer);
        }
    }

    [Fact]
    public void Twelve_block_backbone_multipliers_match_DINOv2_param_groups()
    {
        var groups = ParamGroups.WithDecay(Named(Groups.GetProperty("backbone")), numBlocks: 12, layerwiseDecay: 0.9, patchEmbedLrMultiplier: 0.2, noWeightDecayOnTokens: false);
        AssertMatchesDinov2(Groups.GetProperty("backbone"), groups);
    }

    [Fact]
    public void Head_multipliers_match_DINOv2_param_groups()
    {
        var groups = ParamGroups.WithDecay(Named(Groups.GetProperty("head")), numBlocks: 0, layerwiseDecay: 0.9, patchEmbedLrMultiplier: 0.2, noWeightDecayOnTokens: false);
        AssertMatchesDinov2(Groups.GetProperty("head"), groups);
        Assert.True(groups.Single(g => g.Name == "last_layer.weight_v").IsLastLayer);
    }

    [Fact]
    public void Layerwise_decay_gives_block_i_the_rate_decay_to_the_power_12_minus_i()
    {
        Assert.Equal(Math.Pow(0.9, 13), LayerwiseDecay.Rate("patch_embed.proj.weight", 0.9, 12, forceIsBackbone: true), 12);
        Assert.Equal(Math.Pow(0.9, 12), LayerwiseDecay.Rate("blocks.0.attn.qkv.weight", 0.9, 12, forceIsBackbone: true), 12);
        Assert.Equal(0.9, LayerwiseDecay.Rate("blocks.11.mlp.fc2.weight", 0.9, 12, forceIsBackbone: true), 12);
        Assert.Equal(1.0, LayerwiseDecay.Rate("norm.weight", 0.9, 12, forceIsBackbone: true), 12);
        foreach (var e in Groups.GetProperty("rates_without_force").EnumerateArray())
            Assert.Equal(e.GetProperty("rate").GetDouble(), LayerwiseDecay.Rate(e.GetProperty("name").GetString()!, 0.9, 12), 12);
        foreach (var e in Groups.GetProperty("rates_chunked").EnumerateArray())
            Assert.Equal(e.GetProperty("rate").GetDouble(), LayerwiseDecay.Rate(e.GetProperty("name").GetString()!, 0.9, 12, forceIsBackbone: true, chunkedBlocks: true), 12);
    }

    [Fact]
    public void Tokens_are_exempt_from_weight_decay_by_default()
    {
        var groups = ParamGroups.WithDecay(Named(Groups.GetProperty("backbone")), numBlocks: 12, layerwiseDecay: 0.9, patchEmbedLrMultiplier: 0.2);
        foreach (var token in new[] { "cls_token", "mask_token", "register_tokens" })
            Assert.Equal(0.0, groups.Single(g => g.Name == token).WdMultiplier);
        Assert.Equal(1.0, groups.Single(g => g.Name == "pos_embed").WdMultiplier);
        Assert.Equal(1.0, groups.Single(g => g.Name == "blocks.3.attn.qkv.weight").WdMultiplier);
    }

    [Fact]
    public void Frozen_parameters_are_left_out()
    {
        var named = new List<(string name, Parameter parameter)>
        {
            ("last_layer.weight_g", new Parameter(torch.ones(3, 1), requires_grad: false)),
            ("last_layer.weight_v", new Parameter(torch.ones(3, 2))),
        };
        Assert.Equal(new[] { "last_layer.weight_v" }, ParamGroups.WithDecay(named, 0).Select(g => g.Name));
    }

    [Fact]
    public void Fusing_merges_parameters_with_equal_multipliers()
    {
        var groups = ParamGroups.WithDecay(Named(Groups.GetProperty("backbone")), numBlocks: 12, layerwiseDecay: 0.9, patchEmbedLrMultiplier: 0.2);
        var fused = ParamGroups.Fuse(groups);
        Assert.Equal(groups.Count, fused.Sum(f => f.Parameters.Count));
        Assert.Equal(groups.Select(g => (g.LrMultiplier, g.WdMultiplier, g.IsLastLayer)).Distinct().Count(), fused.Count);
        Assert.Equal(fused.Count, fused.Select(f => (f.LrMultiplier, f.WdMultiplier, f.IsLastLayer)).Distinct().Count());
    }
}

public sealed class ScheduledAdamWTests
{
    [Fact]
    public void Each_group_gets_scaled_lr_and_weight_decay_and_the_last_layer_its_own_lr()
    {
        var named = new List<(string name, Parameter parameter)>
        {
            ("blocks.0.attn.qkv.weight", new Parameter(torch.ones(2, 2))),
            ("blocks.0.norm1.bias", new Parameter(torch.ones(2))),
            ("last_layer.weight_v", new Parameter(torch.ones(3, 2))),
        };
        using var optimizer = new ScheduledAdamW(ParamGroups.Fuse(ParamGroups.WithDecay(named, numBlocks: 1, layerwiseDecay: 0.5)));
        optimizer.ApplySchedules(lr: 0.1, weightDecay: 0.04, lastLayerLr: 0.0);
        var settings = optimizer.CurrentSettings();
        var byName = optimizer.Groups.Select((g, i) => (g.Names[0], settings[i])).ToDictionary(x => x.Item1, x => x.Item2);
        Assert.Equal(0.1 * 0.5, byName["blocks.0.attn.qkv.weight"].LearningRate, 12);
        Assert.Equal(0.04, byName["blocks.0.attn.qkv.weight"].WeightDecay, 12);
        Assert.Equal(0.0, byName["blocks.0.norm1.bias"].WeightDecay);
        Assert.Equal(0.0, byName["last_layer.weight_v"].LearningRate);
    }

    [Fact]
    public void A_zero_last_layer_lr_keeps_the_last_layer_fixed_while_the_rest_learns()
    {
        using var scope = torch.NewDisposeScope();
        var body = new Parameter(torch.ones(2, 2));
        var last = new Parameter(torch.ones(3, 2));
        var named = new List<(string name, Parameter parameter)> { ("blocks.0.mlp.fc1.weight", body), ("last_layer.weight_v", last) };
        using var optimizer = new ScheduledAdamW(ParamGroups.Fuse(ParamGroups.WithDecay(named, numBlocks: 1)));
        optimizer.ApplySchedules(lr: 0.1, weightDecay: 0.04, lastLayerLr: 0.0);
        optimizer.ZeroGrad();
        (body.sum() + last.sum()).backward();
        optimizer.Step();
        Assert.True(last.SameAs(torch.ones(3, 2)));
        Assert.False(body.SameAs(torch.ones(2, 2)));
    }

    [Fact]
    public void Cancelled_last_layer_gradients_skip_the_update_during_the_freeze_epochs_only()
    {
        using var scope = torch.NewDisposeScope();
        var body = new Parameter(torch.ones(2, 2));
        var last = new Parameter(torch.ones(3, 2));
        var named = new List<(string name, Parameter parameter)> { ("mlp.0.weight", body), ("last_layer.weight_v", last) };
        using var optimizer = new ScheduledAdamW(ParamGroups.Fuse(ParamGroups.WithDecay(named, numBlocks: 0)));
        optimizer.ApplySchedules(lr: 0.1, weightDecay: 0.04, lastLayerLr: 0.1);

        optimizer.ZeroGrad();
        (body.sum() + last.sum()).backward();
        Assert.Equal(1, LastLayerFreeze.CancelGradients(named, epoch: 0, freezeEpochs: 1));
        optimizer.Step();
        Assert.True(last.SameAs(torch.ones(3, 2)));

        optimizer.ZeroGrad();
        (body.sum() + last.sum()).backward();
        Assert.Equal(0, LastLayerFreeze.CancelGradients(named, epoch: 1, freezeEpochs: 1));
        optimizer.Step();
        Assert.False(last.SameAs(torch.ones(3, 2)));
    }

    [Fact]
    public void Its_step_updates_weights_and_moments_exactly_as_TorchSharps_AdamW_does()
    {
        using var scope = torch.NewDisposeScope();
        var ours = new[] { new Parameter(torch.linspace(-1, 1, 6).view(2, 3)), new Parameter(torch.linspace(0.5, 2, 3)) };
        var theirs = ours.Select(p => new Parameter(p.detach().clone())).ToArray();
        var named = new List<(string name, Parameter parameter)> { ("blocks.0.mlp.fc1.weight", ours[0]), ("blocks.0.mlp.fc1.bias", ours[1]) };
        using var optimizer = new ScheduledAdamW(ParamGroups.Fuse(ParamGroups.WithDecay(named, numBlocks: 1)));
        optimizer.ApplySchedules(lr: 0.01, weightDecay: 0.04, lastLayerLr: 0.01);
        var settings = optimizer.CurrentSettings();
        using var reference = torch.optim.AdamW(optimizer.Groups.Select((g, i) => new AdamW.ParamGroup(
            g.Parameters.Select(p => theirs[Array.IndexOf(ours, p)]),
            new AdamW.Options { LearningRate = settings[i].LearningRate, weight_decay = settings[i].WeightDecay, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, amsgrad = false, maximize = false })));

        for (var step = 0; step < 5; step++)
        {
            foreach (var set in new[] { ours, theirs })
            {
                foreach (var p in set)
                    p.grad = null;
                (set[0].pow(2).sum() * 3 + (set[1] * set[0][0]).sum().sin()).backward();
            }
            optimizer.Step();
            reference.step();
        }

        var referenceStates = reference.state_dict().State.Cast<AdamW.State>().ToList();
        var ourStates = optimizer.Optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        foreach (var (a, b) in ours.Zip(theirs))
            Assert.True(a.allclose(b, rtol: 0, atol: 0));
        Assert.Equal(referenceStates.Select(s => s.step), ourStates.Select(s => s.step));
        foreach (var (a, b) in ourStates.Zip(referenceStates))
        {
            Assert.True(a.exp_avg.allclose(b.exp_avg, rtol: 0, atol: 0));
            Assert.True(a.exp_avg_sq.allclose(b.exp_avg_sq, rtol: 0, atol: 0));
        }
    }
}
