using MassTransit;
using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.Orchestrator.Tests;

public sealed class StageCatalogTests
{
    [Fact]
    public void Every_stage_has_one_entry_in_the_order_stages_run()
    {
        Assert.Equal(Enum.GetValues<PipelineStage>(), StageCatalog.All.Select(entry => entry.Stage));
    }

    [Fact]
    public void A_stage_queue_is_named_as_MassTransit_names_its_command()
    {
        var formatter = new KebabCaseEndpointNameFormatter(includeNamespace: false);
        Assert.All(StageCatalog.All, entry => Assert.Equal(formatter.SanitizeName(entry.Command.Name), entry.Queue));
    }

    [Fact]
    public void Each_entry_names_a_stage_command_and_a_stage_completion_of_the_contracts()
    {
        Assert.All(StageCatalog.All, entry =>
        {
            Assert.True(typeof(IStageCommand).IsAssignableFrom(entry.Command), $"{entry.Command.Name} is not a stage command");
            Assert.True(typeof(IStageCompleted).IsAssignableFrom(entry.Completion), $"{entry.Completion.Name} is not a stage completion");
        });
        Assert.Equal(StageCatalog.All.Count, StageCatalog.All.Select(entry => entry.Queue).Distinct().Count());
    }

    [Fact]
    public void The_orchestrator_consumes_every_stage_completion()
    {
        Assert.Superset(StageCatalog.All.Select(entry => entry.Completion.FullName!).ToHashSet(), PipelineConsumer.ConsumedTypes.ToHashSet());
    }
}
