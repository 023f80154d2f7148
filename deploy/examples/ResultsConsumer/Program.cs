using MassTransit;
using ResultsConsumer;

// A service of your own that receives the embeddings of every pipeline as they are computed:
//   dotnet run --project deploy/examples/ResultsConsumer -- --RabbitMq amqp://guest:guest@localhost:5672/ --Queue my-embeddings
//       [--PipelineId <id>] [--Output results.jsonl]
var builder = Host.CreateApplicationBuilder(args);
// Logs go to standard error, so standard output carries nothing but the results.
builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
var settings = builder.Configuration.Get<ConsumerSettings>() ?? new ConsumerSettings();
builder.Services.AddSingleton(settings);
builder.Services.AddSingleton<ResultWriter>();
builder.Services.AddMassTransit(bus =>
{
    // A durable queue of this service's own, bound to the EmbeddingsBatch exchange: results published while this
    // service is down wait in it. Several instances sharing the queue name share the work.
    bus.AddConsumer<EmbeddingsBatchConsumer>().Endpoint(endpoint => endpoint.Name = settings.Queue);
    bus.UsingRabbitMq((context, rabbit) =>
    {
        rabbit.Host(new Uri(settings.RabbitMq));
        rabbit.ConfigureEndpoints(context);
    });
});
builder.Build().Run();
