using NvDinoPipeline.Distillation;
using NvDinoPipeline.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.AddNvDinoPipeline(pipeline => pipeline.AddDistillationWorker());
builder.Build().Run();
