using NvDinoPipeline.Hosting;
using NvDinoPipeline.Orchestrator;

var builder = Host.CreateApplicationBuilder(args);
builder.AddNvDinoPipeline(pipeline => pipeline.AddOrchestrator());
builder.Build().Run();
