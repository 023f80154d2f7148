using NvDinoPipeline.Hosting;
using NvDinoPipeline.Training;

var builder = Host.CreateApplicationBuilder(args);
builder.AddNvDinoPipeline(pipeline => pipeline.AddTrainingWorker());
builder.Build().Run();
