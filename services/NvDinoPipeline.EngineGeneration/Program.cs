using NvDinoPipeline.EngineGeneration;
using NvDinoPipeline.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.AddNvDinoPipeline(pipeline => pipeline.AddEngineGenerationWorker());
builder.Build().Run();
