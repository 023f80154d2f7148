using System.Diagnostics;
using NvDinoPipeline.Testing;
using YamlDotNet.RepresentationModel;

namespace NvDinoPipeline.Cli.Tests;

/// <summary>docs/asyncapi.yaml: generated from the contracts, and a document AsyncAPI's own parser accepts.</summary>
public sealed class AsyncApiDocumentTests : IDisposable
{
    private static readonly string Committed = Repo.PathOf(AsyncApiDocument.RepositoryPath);
    private readonly TempDirectory _folder = new("nvdino-asyncapi");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void The_committed_document_is_what_the_contracts_generate()
    {
        var generated = AsyncApiDocument.Generate();
        var committed = File.Exists(Committed) ? File.ReadAllText(Committed) : "";

        var line = FirstDifferentLine(committed, generated);
        Assert.True(line is null, $"{AsyncApiDocument.RepositoryPath} does not match the contracts (first difference at line {line}). "
            + $"Regenerate it: dotnet run --project services/NvDinoPipeline.Cli -- contracts asyncapi --out {AsyncApiDocument.RepositoryPath}");
    }

    [Fact]
    public void Every_message_has_a_schema_with_its_wire_names_and_its_required_keys()
    {
        var root = (YamlMappingNode)Load(AsyncApiDocument.Generate());
        var schemas = (YamlMappingNode)root["components"]["schemas"];
        var start = schemas["StartPipeline"];
        var failed = schemas["PipelineFailed"];

        Assert.Equal(["pipelineId", "requestedAt", "spec"], Strings(start["required"]).Order(StringComparer.Ordinal));
        Assert.Contains("resultsQueue", ((YamlMappingNode)start["properties"]).Children.Keys.Select(k => k.ToString()));
        Assert.Equal(["object", "string"], Strings(start["properties"]["spec"]["type"]));
        Assert.Contains("Training", Strings(failed["properties"]["stage"]["enum"]));
        Assert.Contains("EmbeddingsBatch", schemas.Children.Keys.Select(k => k.ToString()));
        Assert.DoesNotContain("EmbeddingResult", schemas.Children.Keys.Select(k => k.ToString()));
        Assert.Equal("urn:message:NvDinoPipeline.Contracts:StartPipeline",
            root["components"]["messages"]["StartPipeline"]["headers"]["properties"]["MT-MessageType"]["const"].ToString());
        Assert.Equal("pipeline-orchestrator", root["channels"]["pipelineOrchestrator"]["address"].ToString());
    }

    [Fact]
    public async Task The_asyncapi_parser_accepts_the_document_and_refuses_a_broken_one()
    {
        var broken = _folder.Combine("broken.yaml");
        await File.WriteAllTextAsync(broken, (await File.ReadAllTextAsync(Committed)).Replace("#/components/messages/StartPipeline", "#/components/messages/NoSuchMessage"));

        var valid = await ValidateAsync(Committed);
        var invalid = await ValidateAsync(broken);

        Assert.True(valid.ExitCode == 0, valid.Error + valid.Output);
        Assert.Contains("valid AsyncAPI 3.0.0", valid.Output);
        Assert.True(invalid.ExitCode == 1, invalid.Error + invalid.Output);
        Assert.Contains("NoSuchMessage", invalid.Error);
    }

    private static async Task<CommandResult> ValidateAsync(string file)
    {
        var result = await CommandResult.RunAsync(new ProcessStartInfo("bash", [Repo.PathOf("scripts", "tools", "asyncapi.sh"), "validate", file]));
        Assert.True(result.ExitCode != 3, result.Error);
        return result;
    }

    private static int? FirstDifferentLine(string committed, string generated)
    {
        var (a, b) = (committed.Split('\n'), generated.Split('\n'));
        for (var i = 0; i < Math.Max(a.Length, b.Length); i++)
        {
            if (i >= a.Length || i >= b.Length || a[i] != b[i])
            {
                return i + 1;
            }
        }
        return null;
    }

    private static YamlNode Load(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return stream.Documents[0].RootNode;
    }

    private static string[] Strings(YamlNode node) => [.. ((YamlSequenceNode)node).Children.Select(c => c.ToString())];
}
