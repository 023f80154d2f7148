using System.CommandLine;

namespace NvDinoPipeline.Cli.Commands;

/// <summary><c>nvdino spec resolve|validate</c>: what a pipeline would run with, without starting one.</summary>
public static class SpecCommands
{
    public static Command Build()
    {
        var spec = new Command("spec", "Resolve and check specs against the templates in specs/.");
        spec.Subcommands.Add(Resolve());
        spec.Subcommands.Add(Validate());
        return spec;
    }

    private static Command Resolve()
    {
        var inputs = new SpecInputs();
        var command = new Command("resolve", "Print the resolved spec (canonical JSON) that a start message may carry as its spec.");
        inputs.AddTo(command);
        command.SetAction(result => Cli.RunAsync(() =>
        {
            Console.WriteLine(inputs.Resolve(result).ToJson());
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command Validate()
    {
        var inputs = new SpecInputs();
        var command = new Command("validate", "Check spec files and overrides; exit 0 when valid, 2 naming every bad key otherwise.");
        inputs.AddTo(command);
        command.SetAction(result => Cli.RunAsync(() =>
        {
            var spec = inputs.Resolve(result);
            Console.WriteLine($"valid: {spec.Keys.Count} keys, sha256 {spec.Sha256}");
            return Task.FromResult(0);
        }));
        return command;
    }
}

/// <summary>The <c>--spec</c> files and <c>--set</c> overrides every command that takes a spec reads.</summary>
public sealed class SpecInputs
{
    public Option<string[]> Files { get; } = new("--spec") { Description = "Spec YAML file(s), merged over the templates in order." };

    public Option<string[]> Sets { get; } = new("--set") { Description = "Dotted-key override, e.g. train.num_epochs=3 (repeatable)." };

    public Option<string?> Overrides { get; } = new("--spec-overrides")
    {
        Description = "A JSON object of dotted keys and values (TAO API's spec_overrides), inline or a file; applied after --spec, before --set.",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Files);
        command.Options.Add(Overrides);
        command.Options.Add(Sets);
    }

    public NvDinoPipeline.Specs.ResolvedSpec Resolve(ParseResult result) =>
        Cli.ResolveSpec(result.GetValue(Files), [.. SpecOverrides.Read(result.GetValue(Overrides)), .. result.GetValue(Sets) ?? []]);
}
