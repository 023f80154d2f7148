using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace NvDinoPipeline.Specs.Tests;

public sealed class SpecTemplatesTests
{
    private static readonly SpecLoader Loader = SpecFiles.Loader;

    [Fact]
    public void Templates_are_copied_next_to_every_consumer_and_located_there()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "specs");
        foreach (var name in new[] { "train", "distill", "export", "gen_trt_engine", "inference", "pipeline" })
            Assert.True(File.Exists(Path.Combine(beside, name + ".yaml")), $"{name}.yaml is missing from {beside}");

        if (Environment.GetEnvironmentVariable(SpecLoader.SpecsDirectoryVariable) is null)
            Assert.Equal(Path.GetFullPath(beside), SpecLoader.LocateSpecsDirectory());
    }

    [Fact]
    public void Every_example_spec_resolves_over_the_templates()
    {
        var examples = NvDinoPipeline.Testing.Repo.PathOf("specs", "examples");
        var files = Directory.GetFiles(examples, "*.yaml");
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var spec = Loader.Resolve([file], []);
            Assert.True(spec.Get<int>("model.backbone.img_size") % spec.Get<int>("model.backbone.patch_size") == 0, file);
        }

        var small = Loader.Resolve([Path.Combine(examples, "small-images.yaml")], []);
        Assert.Equal((7, 28, 14), (small.Get<int>("model.backbone.patch_size"), small.Get<int>("dataset.transform.global_crops_size"),
            small.Get<int>("dataset.transform.local_crops_size")));
    }

    [Fact]
    public void Defaults_load_with_TAO_and_DINOv2_values()
    {
        var spec = Loader.Resolve(Array.Empty<string>(), []);

        Assert.Equal("vit_l", spec.Get<string>("model.backbone.teacher_type"));
        Assert.Equal("vit_l", spec.Get<string>("model.backbone.student_type"));
        Assert.Equal(14, spec.Get<int>("model.backbone.patch_size"));
        Assert.Equal(518, spec.Get<int>("model.backbone.img_size"));
        Assert.Equal(0.4, spec.Get<double>("model.backbone.drop_path_rate"));
        Assert.Equal("swiglu", spec.Get<string>("model.backbone.ffn_layer"));
        Assert.Equal(1e-5, spec.Get<double?>("model.backbone.layerscale_init"));
        Assert.Equal(131072, spec.Get<int>("model.head.num_prototypes"));
        Assert.Equal([0.32, 1.0], spec.Get<IReadOnlyList<double>>("dataset.transform.global_crops_scale"));
        Assert.Equal(98, spec.Get<int>("dataset.transform.local_crops_size"));
        Assert.Null(spec.Get<string?>("dataset.train_dataset.images_dir"));
        Assert.Equal(0.994, spec.Get<double>("train.teacher.momentum_teacher"));
        Assert.Equal(0.1, spec.Get<double>("train.loss.koleo_loss_weight"));
        Assert.Equal([0.1, 0.5], spec.Get<IReadOnlyList<double>>("train.loss.mask_ratio_min_max"));
        Assert.Equal("adamw", spec.Get<string>("train.optim.optim"));
        Assert.Equal(17, spec.Get<int>("export.opset_version"));
        Assert.Equal(-1, spec.Get<int>("export.batch_size"));
        Assert.Empty(spec.Get<IReadOnlyList<string>>("gen_trt_engine.tensorrt.layers_precision"));
        Assert.Equal(99.99, spec.Get<double>("gen_trt_engine.tensorrt.calibration.percentile"));
        Assert.False(spec.Get<bool>("pipeline.stages.distill"));
        Assert.Equal("onnxruntime", spec.Get<string>("pipeline.deploy.target"));
        Assert.Equal(Loader.Defaults.Sha256, spec.Sha256);
    }

    [Fact]
    public void Every_template_key_is_reachable_through_Get_with_its_template_value()
    {
        var spec = Loader.Defaults;
        var templateLeaves = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "specs"), "*.yaml")
            .SelectMany(file => Leaves(LoadYaml(file), ""))
            .ToList();

        Assert.Equal(templateLeaves.Select(leaf => leaf.Key).Order(StringComparer.Ordinal), spec.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, node) in templateLeaves)
        {
            switch (node)
            {
                case YamlSequenceNode sequence when sequence.Children.Count == 0:
                    Assert.Empty(spec.Get<IReadOnlyList<string>>(key));
                    break;
                case YamlSequenceNode sequence:
                    Assert.Equal(sequence.Children.Select(item => double.Parse(((YamlScalarNode)item).Value!, CultureInfo.InvariantCulture)),
                        spec.Get<IReadOnlyList<double>>(key));
                    break;
                case YamlScalarNode { Value: "null" }:
                    Assert.Null(spec.Get<string?>(key));
                    Assert.False(spec.TryGet<string>(key, out _));
                    break;
                case YamlScalarNode { Value: "true" or "false" } flag:
                    Assert.Equal(flag.Value == "true", spec.Get<bool>(key));
                    break;
                case YamlScalarNode scalar when long.TryParse(scalar.Value, CultureInfo.InvariantCulture, out var integer):
                    Assert.Equal(integer, spec.Get<long>(key));
                    Assert.Equal(integer, spec.Get<int>(key));
                    break;
                case YamlScalarNode scalar when double.TryParse(scalar.Value, CultureInfo.InvariantCulture, out var number):
                    Assert.Equal(number, spec.Get<double>(key));
                    Assert.Equal((float)number, spec.Get<float>(key));
                    break;
                case YamlScalarNode scalar:
                    Assert.Equal(scalar.Value, spec.Get<string>(key));
                    break;
            }
        }
    }

    private static YamlNode LoadYaml(string file)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(file)));
        return stream.Documents[0].RootNode;
    }

    private static IEnumerable<(string Key, YamlNode Node)> Leaves(YamlNode node, string prefix) =>
        node is YamlMappingNode mapping
            ? mapping.Children.SelectMany(pair => Leaves(pair.Value, prefix + ((YamlScalarNode)pair.Key).Value + "."))
            : [(prefix.TrimEnd('.'), node)];

    [Fact]
    public void Every_key_describes_what_it_accepts()
    {
        Assert.Equal("an integer >= 1 (default 100)", Loader.Describe("train.num_epochs"));
        Assert.StartsWith("one of: auto, fp32, bf16 ", Loader.Describe("train.precision"));
        Assert.Contains("or null", Loader.Describe("train.pretrained_model_path"));
        foreach (var key in Loader.Keys)
            Assert.Contains("(default ", Loader.Describe(key));
    }

    [Fact]
    public void A_templates_directory_with_a_bad_default_is_rejected_naming_file_and_line()
    {
        using var files = new SpecFiles();
        var directory = Path.GetDirectoryName(files.Write("placeholder", ""))!;
        foreach (var template in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "specs"), "*.yaml"))
            File.Copy(template, Path.Combine(directory, Path.GetFileName(template)));
        var exportYaml = Path.Combine(directory, "export.yaml");
        File.WriteAllText(exportYaml, File.ReadAllText(exportYaml).Replace("opset_version: 17", "opset_version: 9"));

        var exception = Assert.Throws<SpecValidationException>(() => new SpecLoader(directory));

        var error = Assert.Single(exception.Errors);
        Assert.Equal("export.opset_version", error.Key);
        Assert.Matches(@"export\.yaml:\d+", error.Source);
    }
}
