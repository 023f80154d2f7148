using System.CommandLine;

namespace NvDinoPipeline.Cli.Commands;

/// <summary><c>nvdino contracts asyncapi</c>: the wire contract for clients in other languages.</summary>
public static class ContractCommands
{
    public static Command Build()
    {
        var contracts = new Command("contracts", "Describe the messages on the wire.");
        var output = new Option<string?>("--out") { Description = $"Write the document to this file (e.g. {AsyncApiDocument.RepositoryPath}) instead of standard output." };
        var asyncApi = new Command("asyncapi", "Print the AsyncAPI 3.0 document of every message, with JSON Schemas generated from the contracts.") { output };
        asyncApi.SetAction(result => Cli.RunAsync(async () =>
        {
            var document = AsyncApiDocument.Generate();
            if (result.GetValue(output) is { } file)
            {
                try
                {
                    await File.WriteAllTextAsync(file, document);
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                    throw new CliException($"--out: cannot write '{file}': {exception.Message}");
                }
            }
            else
            {
                Console.Write(document);
            }
            return 0;
        }));
        contracts.Subcommands.Add(asyncApi);
        return contracts;
    }
}
