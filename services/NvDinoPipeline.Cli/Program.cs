using System.CommandLine;
using NvDinoPipeline.Cli.Commands;

var config = new Option<string?>("--config") { Description = "A JSON settings file (same keys as appsettings.json).", Recursive = true };
var root = new RootCommand("nvdino: train, deploy and serve NVDINOv2 image-embedding models.") { config };
root.Subcommands.Add(PipelineCommands.Build(config));
root.Subcommands.Add(JobCommands.Build(config));
root.Subcommands.Add(ResultsCommands.Build(config));
root.Subcommands.Add(SpecCommands.Build());
root.Subcommands.Add(ContractCommands.Build());
root.Subcommands.Add(HostCommands.Serve(config));
root.Subcommands.Add(HostCommands.Demo(config));
return await root.Parse(args).InvokeAsync();
