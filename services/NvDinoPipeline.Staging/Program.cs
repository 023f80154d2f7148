using NvDinoPipeline.Hosting;
using NvDinoPipeline.Staging;

var builder = Host.CreateApplicationBuilder(args);
builder.AddNvDinoPipeline(pipeline => pipeline.AddStagingWorker());
builder.Build().Run();
