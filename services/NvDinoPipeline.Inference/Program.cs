using NvDinoPipeline.Hosting;
using NvDinoPipeline.Inference;

var builder = Host.CreateApplicationBuilder(args);
builder.AddNvDinoPipeline(pipeline => pipeline.AddInferenceWorker());
builder.Build().Run();
