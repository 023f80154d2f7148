using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>The image definitions under deploy/docker, read statically: no Docker engine builds them here.</summary>
public sealed class DockerfileTests
{
    [Fact]
    public void Every_worker_project_under_services_is_a_known_service_with_a_Dockerfile()
    {
        var inTree = DeployFiles.WorkerProjectsInTree();

        Assert.Contains("NvDinoPipeline.Orchestrator", inTree);
        Assert.All(inTree, project =>
        {
            var service = DeployFiles.Services.SingleOrDefault(s => s.Project == project);
            Assert.True(service is not null, $"{project} is a Worker service with no deployment (no Dockerfile, compose service or manifest).");
            Assert.True(File.Exists(Repo.PathOf(service!.Dockerfile)), $"{service.Dockerfile} is missing for {project}.");
        });
        var dockerfiles = Directory.EnumerateFiles(Repo.PathOf("deploy", "docker"), "*.Dockerfile").Select(Path.GetFileName);
        Assert.Equal(DeployFiles.Services.Select(s => Path.GetFileName(s.Dockerfile)).Order(), dockerfiles.Order());
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void The_Dockerfile_publishes_its_service_project_and_copies_only_what_exists(string name)
    {
        var service = DeployFiles.Service(name);
        var dockerfile = Dockerfile.Load(service.Dockerfile);

        var copied = dockerfile.Stage("source").All("COPY")
            .SelectMany(arguments => arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipLast(1));
        Assert.All(copied, source => Assert.True(Path.Exists(Repo.PathOf(source.TrimEnd('/'))), $"COPY {source}: no such path in the repository."));
        var publishes = dockerfile.Stages.SelectMany(stage => stage.All("RUN")).Where(run => run.Contains("dotnet publish")).ToList();
        Assert.NotEmpty(publishes);
        Assert.All(publishes, run => Assert.Contains($"dotnet publish {service.ProjectPath} -c Release -o /app", run));

        // A service still being written has its Dockerfile ahead of its project; once the project exists it must match.
        if (File.Exists(Repo.PathOf(service.ProjectPath)))
        {
            var project = XDocument.Load(Repo.PathOf(service.ProjectPath)).Root!;
            Assert.Equal("Microsoft.NET.Sdk.Worker", project.Attribute("Sdk")?.Value);
            var assemblyName = project.Descendants("AssemblyName").FirstOrDefault()?.Value ?? service.Project;
            Assert.Equal($"[\"dotnet\", \"{assemblyName}.dll\"]", dockerfile.Default.Last("ENTRYPOINT"));
        }
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void Images_build_on_the_dotnet_10_sdk_and_serve_their_readiness_to_the_health_check(string name)
    {
        var dockerfile = Dockerfile.Load(DeployFiles.Service(name).Dockerfile);

        Assert.Equal("mcr.microsoft.com/dotnet/sdk:10.0", dockerfile.Resolve(dockerfile.Stage("source").From));
        var runtimes = dockerfile.Stages.Where(stage => stage.Last("ENTRYPOINT") is not null).ToList();
        Assert.NotEmpty(runtimes);
        Assert.All(runtimes, stage =>
        {
            var environment = stage.Environment();
            var port = environment["Health__Port"];
            // The image serves its health endpoints on loopback (its own HEALTHCHECK); Kubernetes opens them to probes.
            Assert.False(environment.ContainsKey("Health__Address"), $"{stage.Name} sets Health__Address; the endpoints stay on loopback unless a deployment says otherwise.");
            Assert.Equal("/var/lib/nvdino/scratch", environment["Workers__ScratchDirectory"]);
            var exposed = stage.All("EXPOSE").SelectMany(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
            Assert.Contains(port, exposed);
            if (environment.TryGetValue("Api__Port", out var apiPort))
                Assert.Contains(apiPort, exposed);
            var healthCheck = stage.Last("HEALTHCHECK") ?? throw new Xunit.Sdk.XunitException($"Stage {stage.Name} has no HEALTHCHECK.");
            Assert.Contains($"http://127.0.0.1:{port}/readyz", healthCheck);
            Assert.Matches(new Regex(@"^\S"), stage.Last("USER") ?? "");
            Assert.NotEqual("root", stage.Last("USER"));
        });
        var cpuRuntime = runtimes.Single(stage => stage.Name is "runtime" or "cpu");
        Assert.Equal("mcr.microsoft.com/dotnet/aspnet:10.0", dockerfile.Resolve(cpuRuntime.From));
    }

    [Theory]
    [MemberData(nameof(DeployFiles.ServiceNames), MemberType = typeof(DeployFiles))]
    public void Gpu_stages_have_an_nvidia_image_built_with_the_cuda_switch_and_a_cpu_image_beside_it(string name)
    {
        var service = DeployFiles.Service(name);
        var dockerfile = Dockerfile.Load(service.Dockerfile);

        if (!service.Gpu)
        {
            Assert.DoesNotContain(dockerfile.Stages, stage => stage.Name == "gpu");
            Assert.DoesNotContain(dockerfile.Stages.SelectMany(s => s.All("RUN")), run => run.Contains("TorchBackend"));
            return;
        }
        Assert.Equal("gpu", dockerfile.Default.Name);
        Assert.Matches(@"^(nvidia/cuda:12\.8[\d.]*-|nvcr\.io/nvidia/tensorrt:)", dockerfile.Resolve(dockerfile.Stage("gpu").From));
        Assert.Equal("--from=build-gpu /app ./", dockerfile.Stage("gpu").All("COPY").Last());
        var gpuBuild = dockerfile.Stage("build-gpu");
        Assert.Contains("deploy/gpu.props deploy/gpu.props", gpuBuild.All("COPY"));
        Assert.Contains(gpuBuild.All("RUN"), run => run.Contains("-p:TorchBackend=cuda")
            && run.Contains("-p:CustomAfterMicrosoftCommonTargets=/src/deploy/gpu.props"));
        Assert.Equal("--from=build-cpu /app ./", dockerfile.Stage("cpu").All("COPY").Last());
        Assert.DoesNotContain(dockerfile.Stage("build-cpu").All("RUN"), run => run.Contains("TorchBackend"));
    }
}
