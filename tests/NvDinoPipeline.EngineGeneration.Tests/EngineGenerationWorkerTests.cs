using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.EngineGeneration.Tests;

public sealed class EngineGenerationWorkerTests : IDisposable
{
    private readonly TempDirectory _temp = new("nvdino-engine-host");

    public void Dispose() => _temp.Dispose();

    private ServiceProvider Services(params (string Key, string Value)[] settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ArtifactStore:Root"] = new Uri(_temp.Combine("artifacts") + "/").AbsoluteUri,
            ["ArtifactStore:AllowedReadRoots:0"] = _temp.Path,
            ["Workers:ScratchDirectory"] = _temp.Combine("scratch"),
        }.Concat(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value))));
        new PipelineHostBuilder(builder).AddEngineGenerationWorker();
        return builder.Services.BuildServiceProvider();
    }

    [Fact]
    public void Hosts_one_engine_job_at_a_time_on_the_engine_generation_queue()
    {
        using var services = Services();

        var descriptor = services.GetRequiredService<StageDescriptor<GenerateEngine>>();
        Assert.Equal((PipelineStage.EngineGeneration, 1), (descriptor.Stage, descriptor.DefaultConcurrentJobs));
        Assert.Equal("extended", services.GetRequiredService<IOptions<EngineGenerationOptions>>().Value.OnnxRuntimeOptimization);
    }

    [Theory]
    [InlineData("EngineGeneration:OnnxRuntimeOptimization", "fastest", "basic, extended or all")]
    [InlineData("EngineGeneration:TrtexecPath", "bin/trtexec", "must be an absolute path")]
    [InlineData("EngineGeneration:MinMeanCosineInt8", "1.5", "MinMeanCosineInt8")]
    public void A_bad_setting_is_refused_when_the_options_are_first_read(string key, string value, string expected)
    {
        using var services = Services((key, value));

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<EngineGenerationOptions>>().Value);

        Assert.Contains(expected, error.Message);
    }
}
