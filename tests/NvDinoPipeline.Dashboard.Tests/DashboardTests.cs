using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Playwright;
using NvDinoPipeline.Cli;
using NvDinoPipeline.Cli.Commands;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Dashboard.Tests;

/// <summary>
/// Debian's chromium, driven by Playwright, against a running embedded host (real workers, a small real pipeline):
/// what a person would see on each page. A screenshot of each page is kept under artifacts/screenshots/.
/// </summary>
public sealed class DashboardTests : IAsyncLifetime
{
    private static readonly string Screenshots = Repo.PathOf("artifacts", "screenshots");

    private readonly TempDirectory _folder = new("nvdino-dashboard");
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Screenshots);
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium(),
            Headless = true,
            // As root (CI), chromium's sandbox cannot start.
            Args = ["--no-sandbox"],
        });
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        _folder.Dispose();
    }

    /// <summary>Debian's chromium (scripts/test.sh installs it), or NVDINO_CHROMIUM.</summary>
    private static string Chromium()
    {
        var path = Environment.GetEnvironmentVariable("NVDINO_CHROMIUM") is { Length: > 0 } given ? given : "/usr/bin/chromium";
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"No chromium at {path}: install Debian's package (apt-get install chromium) or set NVDINO_CHROMIUM.");
    }

    private IHost Host(params (string Key, string? Value)[] extra)
    {
        var settings = EmbeddedHosts.Settings(_folder.Path);
        settings["Outbox:PollInterval"] = "00:00:00.100";
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }
        return EmbeddedHost.Build(null, settings);
    }

    private static string UrlOf(IHost host) => host.Services.GetRequiredService<HostEndpoint>().Url!;

    /// <summary>The demo dataset's spec overrides as YAML.</summary>
    private static string DemoSpec => string.Join('\n', DemoDataset.SpecOverrides.Select(o => o.Replace("=", ": ", StringComparison.Ordinal)));

    /// <summary>Starts a pipeline through the REST API; returns its id.</summary>
    private static async Task<string> StartAsync(HttpClient http, object request)
    {
        var started = await http.PostAsync("api/v1/pipelines", new StringContent(JsonSerializer.Serialize(request), Encoding.UTF8, "application/json"));
        Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
        return (await started.Content.ReadFromJsonAsync<JsonObject>())!["pipeline_id"]!.GetValue<string>();
    }

    /// <summary>A desktop-sized page, and the script errors it raises.</summary>
    private async Task<(IPage Page, List<string> Errors)> NewPageAsync()
    {
        var page = await _browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        return (page, errors);
    }

    [Fact]
    public async Task The_pages_show_a_pipelines_stages_curves_evaluation_neighbours_and_a_jobs_log_and_files()
    {
        var train = DemoDataset.Write(_folder.Combine("images_train.tar.gz"), 64, seed: 1);
        var test = DemoDataset.Write(_folder.Combine("images_test.tar.gz"), 16, seed: 2);
        using var host = Host();
        await host.StartAsync();
        try
        {
            var url = UrlOf(host);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var id = await StartAsync(http, new { train_data = train, test_data = test, spec = DemoSpec, name = "dashboard test" });

            var (page, errors) = await NewPageAsync();

            // The pipeline page while it runs, then once it is done: every stage Done with its result.
            await page.GotoAsync(url + "#/pipelines/" + id);
            await Assertions.Expect(page.Locator("#steps tr.step[data-step=train]")).ToBeVisibleAsync();
            await Assertions.Expect(page.Locator("h1")).ToContainTextAsync("dashboard test", new() { Timeout = 120_000 });
            await Assertions.Expect(page.Locator("#steps tr.step[data-step=evaluate] .status")).ToHaveTextAsync("Done", new() { Timeout = 120_000 });
            await Assertions.Expect(page.Locator("#steps tr.step .status")).ToHaveTextAsync(Enumerable.Repeat("Done", 7).ToArray());
            await Assertions.Expect(page.Locator("#steps tr.step[data-step=stage-train]")).ToContainTextAsync("64 images staged");
            await Assertions.Expect(page.Locator("#steps tr.step[data-step=inference]")).ToContainTextAsync("16 of 16 images embedded");

            // Loss curves and schedules from the training metrics: one point per epoch.
            var loss = page.Locator("[data-chart=Loss] polyline[data-series=loss]");
            await Assertions.Expect(loss).ToHaveCountAsync(1);
            var points = (await loss.GetAttributeAsync("points"))!.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, points.Length);
            await Assertions.Expect(page.Locator("[data-chart='Learning rate'] polyline[data-series=lr]")).ToHaveCountAsync(1);
            await Assertions.Expect(page.Locator("[data-chart=Teacher] polyline[data-series=teacher_temp]")).ToHaveCountAsync(1);

            // Evaluation figures, and the grid of test images with their nearest neighbours, every image loaded.
            await Assertions.Expect(page.Locator("#evaluation tr[data-metric=knn_top1]")).ToBeVisibleAsync();
            var rows = page.Locator("#neighbours .row");
            await Assertions.Expect(rows).ToHaveCountAsync(6);
            await Assertions.Expect(rows.First.Locator("figure")).ToHaveCountAsync(6);
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#neighbours img')].every(i => i.complete && i.naturalWidth > 0)");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "pipeline.png"), FullPage = true });

            // The list of pipelines.
            await page.GotoAsync(url + "#/");
            await Assertions.Expect(page.Locator($"#pipelines tr[data-pipeline='{id}'] .status")).ToHaveTextAsync("Done");
            await Assertions.Expect(page.Locator($"#pipelines tr[data-pipeline='{id}']")).ToContainTextAsync("dashboard test");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "pipelines.png"), FullPage = true });

            // A job: its log lines and its files.
            await page.GotoAsync(url + "#/pipelines/" + id);
            await page.Locator("#steps tr.step[data-step=train] a").ClickAsync();
            await Assertions.Expect(page.Locator("h1")).ToContainTextAsync("train job");
            await Assertions.Expect(page.Locator("#logs")).ToContainTextAsync("Epoch 1/2 done");
            await Assertions.Expect(page.Locator("#logs")).Not.ToContainTextAsync("\"Training\" job");
            await Assertions.Expect(page.Locator("#artifacts a[data-path='metrics.jsonl']")).ToBeVisibleAsync();
            await Assertions.Expect(page.Locator("#artifacts a[data-path='checkpoints/epoch_002.ckpt']")).ToBeVisibleAsync();
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "job.png"), FullPage = true });

            Assert.Empty(errors);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task An_automl_pipelines_page_lists_its_trials_with_their_values_and_scores_and_marks_the_winner()
    {
        var train = DemoDataset.Write(_folder.Combine("images_train.tar.gz"), 32, seed: 3);
        using var host = Host();
        await host.StartAsync();
        try
        {
            var url = UrlOf(host);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var spec = DemoSpec
                + "\ntrain.num_epochs: 1\nautoml_policy: auto\nautoml.automl_max_recommendations: 2\nautoml.max_concurrent_trials: 1"
                + "\nautoml.held_out_fraction: 0.25\nautoml.automl_hyperparameters: [train.optim.lr, train.teacher.teacher_temp]";
            var id = await StartAsync(http, new { train_data = train, spec, name = "automl dashboard test" });

            var (page, errors) = await NewPageAsync();
            await page.GotoAsync(url + "#/pipelines/" + id);
            await Assertions.Expect(page.Locator("#steps tr.step[data-step=engine] .status")).ToHaveTextAsync("Done", new() { Timeout = 180_000 });

            var trials = page.Locator("#trials tr.trial");
            await Assertions.Expect(trials).ToHaveCountAsync(2);
            await Assertions.Expect(page.Locator("#trials tr.trial .status")).ToHaveTextAsync(["Done", "Done"]);
            await Assertions.Expect(page.Locator("#trials tr.trial.best")).ToHaveCountAsync(1);
            await Assertions.Expect(page.Locator("#trials thead")).ToContainTextAsync("lr");
            await Assertions.Expect(page.Locator("#trials thead")).ToContainTextAsync("teacher_temp");
            await Assertions.Expect(page.Locator("#trials")).ToContainTextAsync("k-NN top-1 on held-out training images");
            // The search's curves are the winning trial's.
            await Assertions.Expect(page.Locator("[data-chart=Loss] polyline[data-series=loss]")).ToHaveCountAsync(1);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "automl.png"), FullPage = true });
            Assert.Empty(errors);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task With_tokens_configured_the_dashboard_asks_for_one_and_refuses_a_wrong_one()
    {
        const string read = "dashboard-read-token-0123";
        using var host = Host(("Api:Tokens:0:Token", read), ("Api:Tokens:0:Access", "Read"));
        await host.StartAsync();
        try
        {
            var page = await _browser.NewPageAsync();
            await page.GotoAsync(UrlOf(host));
            await Assertions.Expect(page.Locator("form.token")).ToBeVisibleAsync();
            await Assertions.Expect(page.Locator("#pipelines")).ToHaveCountAsync(0);

            await page.FillAsync("form.token input", "not-the-token-at-all");
            await page.ClickAsync("form.token button");
            await Assertions.Expect(page.Locator("form.token")).ToContainTextAsync("did not accept");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "sign-in.png") });

            await page.FillAsync("form.token input", read);
            await page.ClickAsync("form.token button");
            await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Pipelines");
            await Assertions.Expect(page.Locator("main")).ToContainTextAsync("No pipeline yet");
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
