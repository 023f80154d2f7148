using NvDinoPipeline.Evaluation;
using NvDinoPipeline.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.AddNvDinoPipeline(pipeline => pipeline.AddEvaluationWorker());
builder.Build().Run();
