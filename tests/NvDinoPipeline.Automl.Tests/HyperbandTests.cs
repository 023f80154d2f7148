using NvDinoPipeline.Automl;

namespace NvDinoPipeline.Automl.Tests;

public sealed class HyperbandTests
{
    private static readonly SearchSpace Space = new([SearchParameter.Float("train.optim.lr", 0, 1)]);

    [Fact]
    public void The_schedule_is_table_1_of_the_hyperband_paper_for_R_81_and_eta_3()
    {
        var brackets = HyperbandSchedule.Brackets(81, 3);

        // (trials, resource) per rung, bracket s = 4 down to 0 (Li et al. 2018, table 1).
        var table = brackets.Select(b => b.Rungs.Select(r => (r.Trials, r.Resource)).ToArray()).ToArray();
        Assert.Equal([(81, 1.0), (27, 3.0), (9, 9.0), (3, 27.0), (1, 81.0)], table[0]);
        Assert.Equal([(34, 3.0), (11, 9.0), (3, 27.0), (1, 81.0)], table[1]);
        Assert.Equal([(15, 9.0), (5, 27.0), (1, 81.0)], table[2]);
        Assert.Equal([(8, 27.0), (2, 81.0)], table[3]);
        Assert.Equal([(5, 81.0)], table[4]);
        // Each rung promotes as many trials as the next one runs; the last promotes none.
        Assert.All(brackets, b => Assert.Equal(b.Rungs.Skip(1).Select(r => r.Trials).Append(0), b.Rungs.Select(r => r.Promoted)));
    }

    [Fact]
    public void TAOs_defaults_R_27_and_nu_3_give_four_brackets()
    {
        var brackets = HyperbandSchedule.Brackets(27, 3);

        Assert.Equal([3, 2, 1, 0], brackets.Select(b => b.S));
        Assert.Equal([27, 12, 6, 4], brackets.Select(b => b.Rungs[0].Trials));
        Assert.Equal([1.0, 3.0, 9.0, 27.0], brackets.Select(b => b.Rungs[0].Resource));
        Assert.Throws<ArgumentOutOfRangeException>(() => HyperbandSchedule.Brackets(27, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => HyperbandSchedule.Brackets(0, 3));
    }

    [Fact]
    public void The_best_of_each_rung_resume_with_more_resource_and_the_rest_stop_early()
    {
        var search = new HyperbandSearch(Space, r: 9, nu: 3, new Random(2));
        // R = 9, nu = 3: brackets (9 at 1, 3 at 3, 1 at 9), (5 at 3, 1 at 9), (3 at 9).
        var first = search.Next();
        Assert.Equal(9, first.Count);
        Assert.All(first, t => Assert.Equal((1.0, false), (t.Resource, t.Resume)));
        Assert.Empty(search.Next());

        // The score is the learning rate itself: the three largest go on.
        foreach (var trial in first)
            search.Report(trial.TrialId, (double)trial.Configuration["train.optim.lr"]);
        var promoted = search.Next();
        var expected = first.OrderByDescending(t => (double)t.Configuration["train.optim.lr"]).Take(3).Select(t => t.TrialId).Order();
        Assert.Equal(expected, promoted.Select(t => t.TrialId).Order());
        Assert.All(promoted, t => Assert.Equal((3.0, true), (t.Resource, t.Resume)));
        Assert.Equal(6, search.Stopped.Count);
        Assert.DoesNotContain(search.Stopped, id => promoted.Any(t => t.TrialId == id));

        foreach (var trial in promoted)
            search.Report(trial.TrialId, trial.TrialId);
        var last = Assert.Single(search.Next());
        Assert.Equal((promoted.Max(t => t.TrialId), 9.0, true), (last.TrialId, last.Resource, last.Resume));
        search.Report(last.TrialId, 0.5);

        // The next bracket starts fresh trials with new ids.
        var second = search.Next();
        Assert.Equal(5, second.Count);
        Assert.All(second, t => Assert.Equal((3.0, false), (t.Resource, t.Resume)));
        Assert.True(second.Min(t => t.TrialId) > 9);
        Assert.Throws<InvalidOperationException>(() => search.Report(first[0].TrialId, 1));

        foreach (var trial in second)
            search.Report(trial.TrialId, trial.TrialId == second[0].TrialId ? 10 : 0);
        var winner = Assert.Single(search.Next());
        Assert.Equal(second[0].TrialId, winner.TrialId);
        search.Report(winner.TrialId, 20);
        var third = search.Next();
        Assert.Equal(3, third.Count);
        foreach (var trial in third)
            search.Report(trial.TrialId, 1);

        Assert.True(search.Finished);
        Assert.Empty(search.Next());
        Assert.Equal(winner.TrialId, search.Best);
        Assert.Equal(9 + 5 + 3, search.Configurations.Count);
    }
}
