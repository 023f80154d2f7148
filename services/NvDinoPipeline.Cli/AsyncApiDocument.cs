using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using MassTransit.Serialization;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace NvDinoPipeline.Cli;

/// <summary>
/// <c>docs/asyncapi.yaml</c>: the wire contract (AsyncAPI 3.0) for clients that do not reference the contracts assembly.
/// Every message's JSON Schema is exported from its contract with the bus's own JSON options, so the document says what
/// is really written and read.
/// </summary>
public static partial class AsyncApiDocument
{
    public const string RepositoryPath = "docs/asyncapi.yaml";

    private const string MessageTypePrefix = "urn:message:NvDinoPipeline.Contracts:";

    /// <summary>What a client sends to the orchestrator's queue.</summary>
    private static readonly Type[] ClientCommands = [typeof(StartPipeline), typeof(CancelPipeline), typeof(ResumePipeline)];

    /// <summary>What a pipeline's results queue receives: its batches, then exactly one of its final events.</summary>
    private static readonly Type[] ResultsQueueMessages = [typeof(EmbeddingsBatch), typeof(PipelineCompleted), typeof(PipelineFailed), typeof(PipelineCanceled)];

    /// <summary>Requests answered to the requester's response address rather than published.</summary>
    private static readonly Dictionary<Type, Type> Replies = new() { [typeof(EmbedImages)] = typeof(ImagesEmbedded) };

    private static readonly JsonSerializerOptions Wire = new(SystemTextJsonMessageSerializer.Options) { TypeInfoResolver = new DefaultJsonTypeInfoResolver() };

    public static string Generate()
    {
        var messages = Messages();
        var commandQueues = CommandQueues();
        var events = messages.Where(m => !ClientCommands.Contains(m) && !commandQueues.ContainsKey(m) && !Replies.ContainsValue(m)).ToList();

        var channels = new JsonObject
        {
            ["pipelineOrchestrator"] = QueueChannel(Queues.Orchestrator,
                "The orchestrator's queue. Clients send pipeline commands here; the stage events reach it through the bindings of their exchanges.",
                ClientCommands),
            ["resultsQueue"] = ResultsChannel(),
        };
        var operations = new JsonObject();
        foreach (var command in ClientCommands)
        {
            operations[Camel(command.Name)] = Operation("receive", "pipelineOrchestrator", command,
                $"The orchestrator takes {command.Name} from its queue.");
        }
        foreach (var (command, queue) in commandQueues)
        {
            var channel = Camel(Pascal(queue));
            channels[channel] = QueueChannel(queue, $"{command.Name} commands, taken by the worker that serves {queue}.", [command]);
            var operation = Operation("receive", channel, command, $"A worker takes {command.Name} from {queue}.");
            if (Replies.TryGetValue(command, out var reply))
            {
                channels[Camel(reply.Name) + "Reply"] = ReplyChannel(reply);
                operation["reply"] = new JsonObject
                {
                    ["channel"] = Ref($"#/channels/{Camel(reply.Name)}Reply"),
                    ["messages"] = new JsonArray(Ref($"#/channels/{Camel(reply.Name)}Reply/messages/{reply.Name}")),
                };
            }
            operations[Camel(command.Name)] = operation;
        }
        foreach (var message in events)
        {
            var channel = Camel(message.Name) + "Exchange";
            channels[channel] = ExchangeChannel(message);
            operations["publish" + message.Name] = Operation("send", channel, message, $"Published to the {ExchangeName(message)} exchange.");
        }
        foreach (var message in ResultsQueueMessages)
        {
            operations["sendResult" + message.Name] = Operation("send", "resultsQueue", message,
                $"Sent to the pipeline's results queue, when its StartPipeline named one.");
        }

        var document = new JsonObject
        {
            ["asyncapi"] = "3.0.0",
            ["info"] = new JsonObject
            {
                ["title"] = "NvDinoPipeline",
                ["version"] = typeof(StartPipeline).Assembly.GetName().Version?.ToString(3) ?? "1.0.0",
                ["description"] = Description,
            },
            ["defaultContentType"] = PlainJson.ContentType.MediaType,
            ["servers"] = new JsonObject
            {
                ["rabbitmq"] = new JsonObject
                {
                    ["host"] = "localhost:5672",
                    ["protocol"] = "amqp",
                    ["description"] = "The RabbitMQ broker of the deployment (setting Messaging:RabbitMq).",
                },
            },
            ["channels"] = channels,
            ["operations"] = operations,
            ["components"] = new JsonObject
            {
                ["messages"] = new JsonObject(messages.Select(m => KeyValuePair.Create(m.Name, (JsonNode?)Message(m)))),
                ["schemas"] = new JsonObject(messages.Select(m => KeyValuePair.Create(m.Name, (JsonNode?)Schema(m)))),
            },
        };
        return ToYaml(document);
    }

    private const string Description = """
        Queue-connected workers that train, deploy and serve NVDINOv2 image-embedding models. Any AMQP client can drive
        them: send a StartPipeline to the pipeline-orchestrator queue and read the embeddings from the results queue it
        names. The operations below are the product's: it receives the commands and sends the events and results, so a
        client sends what an operation receives and receives what one sends.

        A message is plain JSON (content type application/json): the message object itself as the body, its type in the
        MT-MessageType header (urn:message:NvDinoPipeline.Contracts:<Name>). A message without that header, or of a type
        no consumer of the queue handles, is moved to the queue's error queue (<queue>_error) with the reason in its
        MT-Fault-Message header. MassTransit's envelope (application/vnd.masstransit+json) is read as well; there the
        payload below is the envelope's "message". Events on the exchanges are published in the envelope; the results
        queue receives the serialization of the start that named it.

        The spec of a StartPipeline holds only the keys that differ from the templates (a JSON object, or JSON or YAML
        text), or a whole resolved spec (`nvdino spec resolve` prints one). A spec that does not validate fails the
        pipeline with a PipelineFailed naming each key. Enums travel as their names; numbers are still read.

        This document is generated from the contracts: `nvdino contracts asyncapi --out docs/asyncapi.yaml`.
        """;

    /// <summary>The messages: every contract record that is not only a part of another one.</summary>
    private static List<Type> Messages()
    {
        var records = typeof(StartPipeline).Assembly.GetExportedTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false, IsGenericType: false } && !typeof(JsonConverter).IsAssignableFrom(t))
            .ToList();
        var parts = records.SelectMany(t => t.GetProperties()).SelectMany(p => Mentioned(p.PropertyType)).ToHashSet();
        return [.. records.Where(t => !parts.Contains(t)).OrderBy(t => t.Name, StringComparer.Ordinal)];
    }

    private static IEnumerable<Type> Mentioned(Type type) =>
        [type, .. type.IsArray ? Mentioned(type.GetElementType()!) : [], .. type.GetGenericArguments().SelectMany(Mentioned)];

    /// <summary>The queue of every command sent to a worker: each stage's, from the catalog, then the online embedding queue.</summary>
    private static Dictionary<Type, string> CommandQueues() => new(
    [
        .. StageCatalog.All.Select(stage => KeyValuePair.Create(stage.Command, stage.Queue)),
        KeyValuePair.Create(typeof(EmbedImages), Queues.EmbedImages),
    ]);

    private static JsonObject QueueChannel(string queue, string description, IEnumerable<Type> messages) => new()
    {
        ["address"] = queue,
        ["description"] = description,
        ["messages"] = MessageRefs(messages),
        ["bindings"] = new JsonObject
        {
            ["amqp"] = new JsonObject
            {
                ["is"] = "queue",
                ["queue"] = new JsonObject { ["name"] = queue, ["durable"] = true, ["exclusive"] = false, ["autoDelete"] = false },
                ["bindingVersion"] = "0.3.0",
            },
        },
    };

    private static JsonObject ResultsChannel()
    {
        var channel = QueueChannel("{resultsQueue}",
            "The queue a StartPipeline names in resultsQueue. The product declares it durable when it accepts the pipeline, so "
            + "a client that connects later, even after the pipeline ended, finds every message waiting: the pipeline's "
            + "EmbeddingsBatch messages, then its final PipelineCompleted, PipelineFailed or PipelineCanceled.",
            ResultsQueueMessages);
        channel["parameters"] = new JsonObject
        {
            ["resultsQueue"] = new JsonObject { ["description"] = "The resultsQueue of the StartPipeline: 1 to 128 letters, digits, '.', '_', '-' or ':', not starting with 'amq.'." },
        };
        return channel;
    }

    private static JsonObject ExchangeChannel(Type message) => new()
    {
        ["address"] = ExchangeName(message),
        ["description"] = $"MassTransit's exchange for {message.Name}: bind a queue of your own to it to receive every one published.",
        ["messages"] = MessageRefs([message]),
        ["bindings"] = new JsonObject
        {
            ["amqp"] = new JsonObject
            {
                ["is"] = "routingKey",
                ["exchange"] = new JsonObject { ["name"] = ExchangeName(message), ["type"] = "fanout", ["durable"] = true, ["autoDelete"] = false },
                ["bindingVersion"] = "0.3.0",
            },
        },
    };

    private static JsonObject ReplyChannel(Type reply) => new()
    {
        ["address"] = null,
        ["description"] = $"{reply.Name} goes to the response address of the request it answers.",
        ["messages"] = MessageRefs([reply]),
    };

    private static string ExchangeName(Type message) => $"{message.Namespace}:{message.Name}";

    private static JsonObject Operation(string action, string channel, Type message, string description) => new()
    {
        ["action"] = action,
        ["channel"] = Ref($"#/channels/{channel}"),
        ["description"] = description,
        ["messages"] = new JsonArray(Ref($"#/channels/{channel}/messages/{message.Name}")),
    };

    private static JsonObject MessageRefs(IEnumerable<Type> messages) =>
        new(messages.Select(m => KeyValuePair.Create(m.Name, (JsonNode?)Ref($"#/components/messages/{m.Name}"))));

    private static JsonObject Message(Type message) => new()
    {
        ["name"] = message.Name,
        ["contentType"] = PlainJson.ContentType.MediaType,
        ["headers"] = new JsonObject
        {
            ["type"] = "object",
            ["required"] = new JsonArray("MT-MessageType"),
            ["properties"] = new JsonObject
            {
                ["MT-MessageType"] = new JsonObject
                {
                    ["type"] = "string",
                    ["const"] = MessageTypePrefix + message.Name,
                    ["description"] = "The message type; the raw JSON reader also takes several, separated by ';'.",
                },
            },
        },
        ["payload"] = Ref($"#/components/schemas/{message.Name}"),
    };

    private static JsonNode Schema(Type message) => Wire.GetJsonSchemaAsNode(message, SchemaOptions);

    private static readonly JsonSchemaExporterOptions SchemaOptions = new()
    {
        TreatNullObliviousAsNonNullable = true,
        TransformSchemaNode = (context, schema) => context switch
        {
            { PropertyInfo.CustomConverter: SpecTextJsonConverter } => new JsonObject
            {
                ["type"] = new JsonArray("object", "string"),
                ["description"] = "The spec: only the keys that differ from the templates, or a whole resolved spec; a JSON object, or JSON or YAML text.",
            },
            // MassTransit's converter writes read-only dictionaries, so the exporter knows nothing of them: a JSON object.
            _ when schema is JsonValue && DictionaryValueType(context.TypeInfo.Type) is { } value => new JsonObject
            {
                ["type"] = "object",
                ["additionalProperties"] = Wire.GetJsonSchemaAsNode(value, SchemaOptions),
            },
            _ when schema is JsonValue => throw new InvalidOperationException(
                $"No JSON Schema for {context.TypeInfo.Type} ({context.PropertyInfo?.DeclaringType.Name}.{context.PropertyInfo?.Name}): describe it here."),
            _ => schema,
        },
    };

    private static Type? DictionaryValueType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>) && type.GetGenericArguments()[0] == typeof(string)
            ? type.GetGenericArguments()[1]
            : null;

    private static JsonObject Ref(string pointer) => new() { ["$ref"] = pointer };

    private static string Camel(string name) => char.ToLowerInvariant(name[0]) + name[1..];

    private static string Pascal(string kebab) => string.Concat(kebab.Split('-').Select(part => char.ToUpperInvariant(part[0]) + part[1..]));

    private static string ToYaml(JsonNode document)
    {
        using var writer = new StringWriter { NewLine = "\n" };
        new YamlStream(new YamlDocument(ToYamlNode(document))).Save(writer, assignAnchors: false);
        // YamlDotNet ends a document with "...": not needed for a single document.
        return writer.ToString().TrimEnd().TrimEnd('.').TrimEnd() + "\n";
    }

    private static YamlNode ToYamlNode(JsonNode? node) => node switch
    {
        JsonObject map => new YamlMappingNode(map.Select(p => KeyValuePair.Create<YamlNode, YamlNode>(new YamlScalarNode(p.Key), ToYamlNode(p.Value)))),
        JsonArray list => new YamlSequenceNode(list.Select(ToYamlNode)),
        JsonValue value when value.GetValueKind() == JsonValueKind.String => Text(value.GetValue<string>()),
        null => new YamlScalarNode("null"),
        _ => new YamlScalarNode(node.ToJsonString()),
    };

    /// <summary>A string scalar, quoted when YAML would read it plain as something else (true, null, 3, …) or spans lines.</summary>
    private static YamlScalarNode Text(string text) => new(text)
    {
        Style = text.Contains('\n') ? ScalarStyle.Literal : NotPlainText().IsMatch(text) ? ScalarStyle.DoubleQuoted : ScalarStyle.Any,
    };

    [GeneratedRegex(@"^$|^(true|false|null|yes|no|on|off|~)$|^[-+.\d]", RegexOptions.IgnoreCase)]
    private static partial Regex NotPlainText();
}
