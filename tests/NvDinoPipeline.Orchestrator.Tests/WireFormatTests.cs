using System.Text.Json;
using MassTransit.Serialization;
using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>What a reader without the contracts assembly sees: enums by name, a spec as an object or as text.</summary>
public sealed class WireFormatTests
{
    private static readonly JsonSerializerOptions Wire = new(SystemTextJsonMessageSerializer.Options) { WriteIndented = false };

    [Fact]
    public void Enums_are_written_as_names_and_read_as_names_or_numbers()
    {
        var failed = new PipelineFailed { PipelineId = Guid.NewGuid(), Stage = PipelineStage.Training, JobId = Guid.NewGuid(), Reason = "r", FailedAt = DateTimeOffset.UtcNow };

        var json = JsonSerializer.Serialize(failed, Wire);

        Assert.Contains("\"stage\":\"Training\"", json);
        Assert.Equal(PipelineStage.Export, JsonSerializer.Deserialize<PipelineFailed>(json.Replace("\"Training\"", "3"), Wire)!.Stage);
        Assert.Equal(PipelineStage.Export, JsonSerializer.Deserialize<PipelineFailed>(json.Replace("\"Training\"", "\"Export\""), Wire)!.Stage);
        Assert.Contains("\"stages\":[\"Staging\",\"Inference\"]", JsonSerializer.Serialize(
            new PipelineStarted { PipelineId = Guid.NewGuid(), Stages = [PipelineStage.Staging, PipelineStage.Inference], StartedAt = DateTimeOffset.UtcNow }, Wire));
    }

    [Fact]
    public void A_start_spec_is_read_from_an_object_or_a_string()
    {
        const string start = """{"pipelineId":"0b5f3c8e-8f3a-4c55-9f55-1d2f0e6a7b10","trainDataUri":"file:///d/t.tar","requestedAt":"2026-01-01T00:00:00Z","spec":""";

        var fromObject = JsonSerializer.Deserialize<StartPipeline>(start + """{"train": {"num_epochs": 3}}}""", Wire)!;
        var fromYaml = JsonSerializer.Deserialize<StartPipeline>(start + "\"train:\\n  num_epochs: 3\\n\"}", Wire)!;

        Assert.Equal("""{"train": {"num_epochs": 3}}""", fromObject.Spec);
        Assert.Equal("train:\n  num_epochs: 3\n", fromYaml.Spec);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<StartPipeline>(start + "[1]}", Wire));
    }
}
