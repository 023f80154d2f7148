namespace NvDinoPipeline.Deploy.Tests;

/// <summary>
/// The root docker-compose.yml: validated by Debian's docker-compose (which needs no engine for
/// <c>config</c>), then read for what a cluster needs. Nothing is started: there is no Docker engine here.
/// </summary>
public sealed class ComposeFileTests
{
    private const string ComposeFile = "docker-compose.yml";
    private static readonly string[] Infrastructure = ["rabbitmq", "postgres", "minio", "minio-bucket"];

    private static readonly Lazy<Dictionary<string, object?>> Compose = new(() => DeployFiles.LoadYaml(ComposeFile).Single());

    private static Dictionary<string, object?> ComposeServices => Compose.Value.Map("services");

    /// <summary>The compose services running one deployable service: itself, and its CPU variant for GPU stages.</summary>
    private static IEnumerable<(string Name, Dictionary<string, object?> Definition)> Variants(ServiceSpec service)
    {
        yield return (service.Name, ComposeServices.Map(service.Name));
        if (service.Gpu)
        {
            yield return ($"{service.Name}-cpu", ComposeServices.Map($"{service.Name}-cpu"));
        }
    }

    private static Dictionary<string, string> Environment(Dictionary<string, object?> definition) =>
        definition.Map("environment").ToDictionary(pair => pair.Key, pair => DeployFiles.WithDefaults((string)pair.Value!));

    private static readonly string[] Passwords = ["NVDINO_RABBITMQ_PASSWORD", "NVDINO_POSTGRES_PASSWORD", "NVDINO_MINIO_PASSWORD"];

    /// <summary>docker-compose config with exactly the variables of <paramref name="envFile"/>: none inherited, no .env read.</summary>
    private static async Task<ExternalTool.Result> ConfigAsync(string envFile)
    {
        var clean = System.Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Where(name => name.StartsWith("NVDINO_", StringComparison.Ordinal))
            .ToDictionary(name => name, string? (_) => null);
        return await ExternalTool.RunAsync("docker-compose", ["-f", ComposeFile, "--env-file", envFile, "config", "-q"], Repo.Root,
            TimeSpan.FromSeconds(60), "Install Debian's docker-compose package (apt-get install docker-compose); ./scripts/test.sh installs it.", clean);
    }

    [Fact]
    public async Task Docker_compose_accepts_the_file_once_every_password_is_set()
    {
        var envFile = Path.GetTempFileName();
        try
        {
            await File.WriteAllLinesAsync(envFile, Passwords.Select(name => $"{name}={Guid.NewGuid():N}"));

            var result = await ConfigAsync(envFile);

            Assert.True(result.ExitCode == 0, $"docker-compose config rejected {ComposeFile}:\n{result.Error}{result.Output}");
        }
        finally
        {
            File.Delete(envFile);
        }
    }

    [Fact]
    public async Task Docker_compose_refuses_to_start_while_a_password_is_unset_and_says_where_to_set_it()
    {
        var envFile = Path.GetTempFileName();
        try
        {
            await File.WriteAllLinesAsync(envFile, Passwords.Skip(1).Select(name => $"{name}={Guid.NewGuid():N}"));

            var result = await ConfigAsync(envFile);

            Assert.NotEqual(0, result.ExitCode);
            Assert.Contains("set NVDINO_RABBITMQ_PASSWORD in .env (copy .env.example", result.Error);
        }
        finally
        {
            File.Delete(envFile);
        }
    }

    [Fact]
    public void No_password_has_a_default_and_the_env_example_lists_each_one_empty()
    {
        var text = File.ReadAllText(Repo.PathOf(ComposeFile));
        var example = DeployFiles.EnvFile(".env.example");

        Assert.Equal(Passwords, DeployFiles.RequiredVariables(text));
        Assert.DoesNotMatch(@"\$\{\w*(PASSWORD|SECRET)\w*:-", text);
        Assert.All(Passwords, name => Assert.Equal("", example[name]));
        Assert.Contains("/.env", File.ReadAllLines(Repo.PathOf(".gitignore")));
    }

    [Fact]
    public void Every_service_and_nothing_else_runs_beside_the_infrastructure()
    {
        var expected = DeployFiles.Services
            .SelectMany(s => s.Gpu ? new[] { s.Name, $"{s.Name}-cpu" } : [s.Name])
            .Concat(Infrastructure)
            .Order();

        Assert.Equal(expected, ComposeServices.Keys.Order());
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void A_service_is_built_from_its_Dockerfile_and_starts_once_broker_database_and_bucket_are_ready(string name)
    {
        var service = DeployFiles.Service(name);
        foreach (var (composeName, definition) in Variants(service))
        {
            var build = definition.Map("build");
            Assert.Equal(".", build.Str("context"));
            Assert.Equal(service.Dockerfile, build.Str("dockerfile"));
            Assert.StartsWith($"{service.ImageRepository}:", DeployFiles.WithDefaults(definition.Str("image")));

            var dependsOn = definition.Map("depends_on");
            Assert.Equal("service_healthy", dependsOn.Map("rabbitmq").Str("condition"));
            Assert.Equal("service_healthy", dependsOn.Map("postgres").Str("condition"));
            Assert.Equal("service_completed_successfully", dependsOn.Map("minio-bucket").Str("condition"));

            var port = Environment(definition)["Health__Port"];
            var test = string.Join(' ', definition.Map("healthcheck").Seq("test").Cast<string>());
            Assert.Contains($"http://127.0.0.1:{port}/readyz", test);
            Assert.Equal("unless-stopped", definition.Str("restart"));
        }
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void A_service_is_configured_by_environment_variables_alone_for_rabbitmq_postgres_and_minio(string name)
    {
        foreach (var (composeName, definition) in Variants(DeployFiles.Service(name)))
        {
            Assert.False(definition.ContainsKey("env_file"), $"{composeName}: configuration comes from environment variables, not env files.");
            var environment = Environment(definition);
            Assert.Equal("RabbitMq", environment["Messaging__Transport"]);
            Assert.Matches(@"^amqp://[^:@/]+:[^@/]+@rabbitmq:5672/$", environment["Messaging__RabbitMq"]);
            Assert.Equal("Postgres", environment["State__Provider"]);
            Assert.Contains("Host=postgres;", environment["State__ConnectionString"]);
            Assert.Matches(@"^s3://[a-z0-9.-]+/", environment["ArtifactStore__Root"]);
            Assert.Equal("http://minio:9000", environment["ArtifactStore__S3__ServiceUrl"]);
            Assert.Equal("true", environment["ArtifactStore__S3__ForcePathStyle"]);
            Assert.NotEmpty(environment["ArtifactStore__S3__AccessKey"]);
            Assert.NotEmpty(environment["ArtifactStore__S3__SecretKey"]);
            Assert.False(environment.ContainsKey("Health__Address"), $"{composeName}: the health check runs inside the container; the endpoints stay on loopback.");

            // The only mount is the scratch volume, at the folder the workers are told to use.
            var mounts = definition.TryGetValue("volumes", out var volumes) ? ((List<object?>)volumes!).Cast<string>().ToList() : [];
            Assert.All(mounts, mount => Assert.EndsWith($":{environment["Workers__ScratchDirectory"]}", mount));
            Assert.All(mounts, mount => Assert.True(Compose.Value.Map("volumes").ContainsKey(mount.Split(':')[0]),
                $"{composeName} mounts '{mount}', which is no named volume."));
        }
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void Gpu_stages_reserve_an_nvidia_gpu_under_the_gpu_profile_and_run_on_cpu_under_the_cpu_profile(string name)
    {
        var service = DeployFiles.Service(name);
        var definition = ComposeServices.Map(name);
        if (!service.Gpu)
        {
            Assert.False(definition.ContainsKey("deploy"), $"{name} runs on CPU and reserves no device.");
            Assert.False(definition.ContainsKey("profiles"), $"{name} runs whatever the profile.");
            return;
        }

        var devices = definition.At("deploy.resources.reservations").Seq("devices").Maps().ToList();
        var device = Assert.Single(devices);
        Assert.Equal("nvidia", device.Str("driver"));
        Assert.Contains("gpu", device.Seq("capabilities").Cast<string>());
        Assert.Equal(["gpu"], definition.Seq("profiles").Cast<string>());
        Assert.Equal("gpu", definition.Map("build").Str("target"));

        var cpu = ComposeServices.Map($"{name}-cpu");
        Assert.False(cpu.ContainsKey("deploy"));
        Assert.Equal(["cpu"], cpu.Seq("profiles").Cast<string>());
        Assert.Equal("cpu", cpu.Map("build").Str("target"));
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void Docker_waits_longer_than_the_service_takes_to_hand_its_jobs_back(string name)
    {
        foreach (var (composeName, definition) in Variants(DeployFiles.Service(name)))
        {
            var shutdown = DeployFiles.Duration(Environment(definition)["Shutdown__Timeout"]);
            var grace = DeployFiles.Duration(definition.Str("stop_grace_period"));
            Assert.True(grace > shutdown, $"{composeName}: stop_grace_period {grace} must exceed Shutdown__Timeout {shutdown}.");
        }
    }

    [Fact]
    public void Broker_database_and_storage_report_health_and_the_artifact_bucket_is_created()
    {
        Assert.Contains("management", ComposeServices.Map("rabbitmq").Str("image"));
        foreach (var name in new[] { "rabbitmq", "postgres", "minio" })
        {
            Assert.NotEmpty(ComposeServices.Map(name).Map("healthcheck").Seq("test"));
        }
        var bucketJob = ComposeServices.Map("minio-bucket");
        Assert.Equal("service_healthy", bucketJob.Map("depends_on").Map("minio").Str("condition"));
        Assert.Equal("no", bucketJob.Str("restart"));

        var bucketEnvironment = Environment(bucketJob);
        var command = string.Join(' ', bucketJob.Seq("command").Cast<string>())
            .Replace("$$NVDINO_BUCKET", bucketEnvironment["NVDINO_BUCKET"]);
        var root = new Uri(Environment(ComposeServices.Map("staging"))["ArtifactStore__Root"]);
        Assert.Contains($"mc mb --ignore-existing \"nvdino/{root.Host}\"", command);
        Assert.Equal(Environment(ComposeServices.Map("minio"))["MINIO_ROOT_USER"],
            Environment(ComposeServices.Map("staging"))["ArtifactStore__S3__AccessKey"]);
    }
}
