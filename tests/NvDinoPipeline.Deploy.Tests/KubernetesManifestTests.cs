namespace NvDinoPipeline.Deploy.Tests;

/// <summary>
/// The manifests under deploy/k8s, parsed and checked for what running on a cluster needs. Nothing is
/// applied: no cluster (and no KEDA) is reachable from the test suite.
/// </summary>
public sealed class KubernetesManifestTests
{
    private const string Folder = "deploy/k8s";

    private static readonly Lazy<Dictionary<string, object?>> Kustomization = new(() => DeployFiles.LoadYaml($"{Folder}/kustomization.yaml").Single());

    /// <summary>Every manifest, and the Secrets kustomize generates, with the keys of their committed <c>.example</c> files.</summary>
    private static readonly Lazy<List<Dictionary<string, object?>>> Resources = new(() =>
    [
        .. Directory.EnumerateFiles(Repo.PathOf(Folder), "*.yaml")
            .Where(path => Path.GetFileName(path) != "kustomization.yaml")
            .SelectMany(path => DeployFiles.LoadYaml(Path.GetRelativePath(Repo.Root, path))),
        .. Kustomization.Value.Seq("secretGenerator").Maps().Select(generator => new Dictionary<string, object?>
        {
            ["kind"] = "Secret",
            ["metadata"] = new Dictionary<string, object?> { ["name"] = generator.Str("name"), ["namespace"] = generator.Str("namespace") },
            ["stringData"] = DeployFiles.EnvFile($"{Folder}/{Assert.Single(generator.Seq("envs").Cast<string>())}.example")
                .ToDictionary(pair => pair.Key, pair => (object?)pair.Value),
        }),
    ]);

    private static Dictionary<string, object?> Resource(string kind, string name) =>
        Resources.Value.SingleOrDefault(r => r.Str("kind") == kind && r.Map("metadata").Str("name") == name)
        ?? throw new KeyNotFoundException($"No {kind} named {name} under {Folder}.");

    private static Dictionary<string, object?> Container(ServiceSpec service)
    {
        var deployment = Resource("Deployment", service.KubernetesName);
        return Assert.Single(deployment.At("spec.template.spec").Seq("containers").Maps());
    }

    private static Dictionary<string, string> ConfigMap => Resource("ConfigMap", "nvdino-config").Map("data")
        .ToDictionary(pair => pair.Key, pair => (string)pair.Value!);

    /// <summary>What the container sees: the ConfigMap, the Secret's keys, then its own env entries on top.</summary>
    private static Dictionary<string, string> EffectiveEnvironment(Dictionary<string, object?> container)
    {
        var environment = new Dictionary<string, string>(ConfigMap);
        if (container.TryGetValue("env", out var env) && env is List<object?> entries)
        {
            foreach (var entry in entries.Maps())
            {
                environment[entry.Str("name")] = entry.Str("value");
            }
        }
        return environment;
    }

    [Fact]
    public void Kustomization_applies_every_manifest_in_the_folder()
    {
        var listed = Kustomization.Value.Seq("resources").Cast<string>().Order().ToList();
        var present = Directory.EnumerateFiles(Repo.PathOf(Folder), "*.yaml").Select(path => Path.GetFileName(path))
            .Where(name => name != "kustomization.yaml").Order().ToList();

        Assert.Equal(present, listed);
        Assert.All(Resources.Value.Where(r => r.Str("kind") != "Namespace"),
            resource => Assert.Equal("nvdino", resource.Map("metadata").Str("namespace")));
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void A_deployment_probes_the_health_port_and_takes_its_settings_from_the_config_map_and_secret(string name)
    {
        var service = DeployFiles.Service(name);
        var container = Container(service);
        var environment = EffectiveEnvironment(container);

        Assert.StartsWith($"{service.ImageRepository}:", container.Str("image"));
        var health = Assert.Single(container.Seq("ports").Maps(), port => port.Str("name") == "health");
        Assert.Equal(environment["Health__Port"], health.Str("containerPort"));
        Assert.Equal("*", environment["Health__Address"]);
        Assert.Equal("/healthz", container.At("livenessProbe.httpGet").Str("path"));
        Assert.Equal("health", container.At("livenessProbe.httpGet").Str("port"));
        Assert.Equal("/readyz", container.At("readinessProbe.httpGet").Str("path"));
        Assert.Equal("health", container.At("readinessProbe.httpGet").Str("port"));

        var envFrom = container.Seq("envFrom").Maps().ToList();
        Assert.Contains(envFrom, source => source.MapOrNull("configMapRef")?.Str("name") == "nvdino-config");
        Assert.Contains(envFrom, source => source.MapOrNull("secretRef")?.Str("name") == "nvdino-secrets");
        // Credentials come from the Secret only, never from a value written into the Deployment.
        Assert.All(environment.Keys.Intersect(Resource("Secret", "nvdino-secrets").Map("stringData").Keys),
            key => Assert.False(ConfigMap.ContainsKey(key), $"{key} is a credential and belongs in the Secret only."));
        if (container.TryGetValue("env", out var env) && env is List<object?> entries)
        {
            Assert.All(entries.Maps(), entry => Assert.DoesNotMatch("(?i)password|secret|amqp://", entry.Str("value")));
        }

        var scratch = Assert.Single(container.Seq("volumeMounts").Maps());
        Assert.Equal(environment["Workers__ScratchDirectory"], scratch.Str("mountPath"));
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void A_deployment_requests_cpu_and_memory_and_a_gpu_exactly_when_its_stage_needs_one(string name)
    {
        var service = DeployFiles.Service(name);
        var resources = Container(service).Map("resources");
        var requests = resources.Map("requests");
        var limits = resources.Map("limits");

        Assert.True(requests.ContainsKey("cpu") && requests.ContainsKey("memory"), $"{name} requests no cpu or memory.");
        Assert.True(limits.ContainsKey("memory"), $"{name} has no memory limit.");
        var podSpec = Resource("Deployment", service.KubernetesName).At("spec.template.spec");
        if (service.Gpu)
        {
            Assert.Equal("1", requests.Str("nvidia.com/gpu"));
            Assert.Equal("1", limits.Str("nvidia.com/gpu"));
            Assert.Contains(podSpec.Seq("tolerations").Maps(), toleration => toleration.Str("key") == "nvidia.com/gpu");
        }
        else
        {
            Assert.False(requests.ContainsKey("nvidia.com/gpu") || limits.ContainsKey("nvidia.com/gpu"), $"{name} runs on CPU nodes.");
        }
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void Kubernetes_waits_longer_than_the_service_takes_to_hand_its_jobs_back(string name)
    {
        var service = DeployFiles.Service(name);
        var podSpec = Resource("Deployment", service.KubernetesName).At("spec.template.spec");
        var grace = TimeSpan.FromSeconds(int.Parse(podSpec.Str("terminationGracePeriodSeconds")));
        var shutdown = DeployFiles.Duration(EffectiveEnvironment(Container(service))["Shutdown__Timeout"]);

        Assert.True(grace > shutdown, $"{name}: terminationGracePeriodSeconds {grace} must exceed Shutdown__Timeout {shutdown}.");
        if (service.Stage is Contracts.PipelineStage.Training or Contracts.PipelineStage.Distillation)
        {
            Assert.True(shutdown >= TimeSpan.FromMinutes(5), $"{name} stops mid-epoch: it needs minutes to finish a checkpoint upload, has {shutdown}.");
        }
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void Each_deployment_scales_on_the_depth_of_its_own_queue(string name)
    {
        var service = DeployFiles.Service(name);
        var scaled = Resource("ScaledObject", service.KubernetesName).Map("spec");

        Assert.Equal(service.KubernetesName, scaled.Map("scaleTargetRef").Str("name"));
        var trigger = Assert.Single(scaled.Seq("triggers").Maps());
        Assert.Equal("rabbitmq", trigger.Str("type"));
        var metadata = trigger.Map("metadata");
        Assert.Equal(service.Queue, metadata.Str("queueName"));
        Assert.Equal("QueueLength", metadata.Str("mode"));
        // Over the management API the count includes delivered, unacknowledged messages: running jobs keep their replicas.
        Assert.Equal("http", metadata.Str("protocol"));
        Assert.False(metadata.ContainsKey("excludeUnacknowledged"));

        var environment = EffectiveEnvironment(Container(service));
        if (service.Stage is { } stage)
        {
            Assert.Equal(environment[$"Workers__ConcurrentJobs__{stage}"], metadata.Str("value"));
        }
        Assert.True(int.Parse(scaled.Str("maxReplicaCount")) >= Math.Max(1, int.Parse(scaled.Str("minReplicaCount"))));
        if (service.Stage is null)
        {
            Assert.True(int.Parse(scaled.Str("minReplicaCount")) >= 1, "Pipelines need a live orchestrator to advance.");
        }

        var authentication = Resource("TriggerAuthentication", trigger.Map("authenticationRef").Str("name"));
        var host = Assert.Single(authentication.Map("spec").Seq("secretTargetRef").Maps(), r => r.Str("parameter") == "host");
        Assert.True(Resource("Secret", host.Str("name")).Map("stringData").ContainsKey(host.Str("key")),
            $"The KEDA host comes from {host.Str("name")}/{host.Str("key")}, which does not exist.");
    }

    [Fact]
    public void The_config_map_and_secret_hold_every_setting_a_cluster_process_needs()
    {
        var secret = Resource("Secret", "nvdino-secrets").Map("stringData");

        Assert.Equal("RabbitMq", ConfigMap["Messaging__Transport"]);
        Assert.Equal("Postgres", ConfigMap["State__Provider"]);
        Assert.StartsWith("s3://", ConfigMap["ArtifactStore__Root"]);
        Assert.StartsWith("http", ConfigMap["ArtifactStore__S3__ServiceUrl"]);
        Assert.Equal("true", ConfigMap["ArtifactStore__S3__ForcePathStyle"]);
        Assert.StartsWith("amqp://", secret.Str("Messaging__RabbitMq"));
        Assert.Contains("Host=", secret.Str("State__ConnectionString"));
        Assert.True(secret.ContainsKey("ArtifactStore__S3__AccessKey"));
        Assert.True(secret.ContainsKey("ArtifactStore__S3__SecretKey"));
        Assert.All(ConfigMap, setting => Assert.DoesNotMatch("(?i)password=|amqps?://[^/]*@", setting.Value));
    }

    [Fact]
    public void Credentials_come_only_from_uncommitted_env_files_whose_templates_hold_no_password()
    {
        var generators = Kustomization.Value.Seq("secretGenerator").Maps().ToList();
        var ignored = File.ReadAllLines(Repo.PathOf(".gitignore"));

        Assert.Equal(["nvdino-keda-rabbitmq", "nvdino-secrets"], generators.Select(g => g.Str("name")).Order());
        Assert.Equal("true", Kustomization.Value.At("generatorOptions").Str("disableNameSuffixHash"));
        foreach (var file in generators.Select(g => Assert.Single(g.Seq("envs").Cast<string>())))
        {
            Assert.Contains($"/{Folder}/{file}", ignored);
            foreach (var (key, value) in DeployFiles.EnvFile($"{Folder}/{file}.example"))
            {
                // A template names where a password goes, never one: empty, or a <password> placeholder in a URI.
                Assert.DoesNotMatch(@"://[^:/@]+:(?!<password>@)[^@/]+@|(?i)password=(?!<password>;)", value);
                if (key.EndsWith("SecretKey", StringComparison.Ordinal) || key.EndsWith("AccessKey", StringComparison.Ordinal))
                {
                    Assert.Equal("", value);
                }
            }
        }
        Assert.DoesNotContain(Directory.EnumerateFiles(Repo.PathOf(Folder)), path => File.ReadAllText(path).Contains("change-me", StringComparison.Ordinal));
    }
}
