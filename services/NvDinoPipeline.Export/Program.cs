using NvDinoPipeline.Export;
using NvDinoPipeline.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.AddNvDinoPipeline(pipeline => pipeline.AddExportWorker());
builder.Build().Run();
