using System.Net.Mime;
using System.Runtime.Serialization;
using MassTransit;
using MassTransit.Configuration;
using MassTransit.Middleware.Rescue;
using MassTransit.Serialization;
using MassTransit.Transports;
using Microsoft.Extensions.Logging;

namespace NvDinoPipeline.Hosting.Messaging;

/// <summary>
/// Plain JSON messages (content type <c>application/json</c>): the message itself as the body, its type in the
/// <c>MT-MessageType</c> header (<c>urn:message:NvDinoPipeline.Contracts:StartPipeline</c>), read and written by
/// MassTransit's raw JSON serializer next to its envelope.
/// </summary>
public static class PlainJson
{
    public static readonly ContentType ContentType = SystemTextJsonRawMessageSerializer.JsonContentType;

    /// <summary>The content type a reply to <paramref name="context"/> goes in: plain JSON for plain JSON, else the bus default (null).</summary>
    public static string? ContentTypeOf(ConsumeContext context) =>
        context.ReceiveContext.ContentType?.MediaType == ContentType.MediaType ? ContentType.MediaType : null;

    /// <summary>
    /// Reads plain JSON on every endpoint and lets sends choose it (<see cref="UseContentType"/>). Without
    /// <see cref="RawSerializerOptions.AnyMessageType"/> a message is only the types its header names; one that names none
    /// is refused here, since MassTransit's raw deserializer would count it as every type.
    /// </summary>
    public static void AddPlainJson(this IBusFactoryConfigurator configurator)
    {
        var factory = new TypedPlainJsonSerializerFactory(RawSerializerOptions.AddTransportHeaders | RawSerializerOptions.CopyHeaders);
        configurator.AddSerializer(factory, isSerializer: false);
        configurator.AddDeserializer(factory);
    }

    /// <summary>Writes the message as plain JSON when <paramref name="contentType"/> asks for it; null keeps the bus default.</summary>
    public static void UseContentType(this SendContext context, string? contentType)
    {
        if (contentType is not null && context.Serialization.TryGetMessageSerializer(new ContentType(contentType), out var serializer))
        {
            context.Serializer = serializer;
        }
    }

    /// <summary>Sends what no consumer of an endpoint takes to its error queue with the reason, instead of <c>_skipped</c>.</summary>
    public static void RefuseUnconsumedMessages(this IReceiveEndpointConfigurator endpoint, ILogger logger) =>
        endpoint.ConfigureDeadLetter(pipe => pipe.UseFilter(new RefuseUnconsumedFilter(logger)));

    private sealed class TypedPlainJsonSerializerFactory(RawSerializerOptions options) : ISerializerFactory
    {
        private readonly SystemTextJsonRawMessageSerializerFactory _raw = new(options);

        public ContentType ContentType => _raw.ContentType;

        public IMessageSerializer CreateSerializer() => _raw.CreateSerializer();

        public IMessageDeserializer CreateDeserializer() => new TypedDeserializer(_raw.CreateDeserializer());
    }

    private sealed class TypedDeserializer(IMessageDeserializer raw) : IMessageDeserializer
    {
        public ContentType ContentType => raw.ContentType;

        public void Probe(ProbeContext context) => raw.Probe(context);

        public ConsumeContext Deserialize(ReceiveContext receiveContext)
        {
            if (receiveContext.TransportHeaders.GetMessageTypes().Length == 0)
            {
                throw new SerializationException("The message was refused: it names no message type. A plain JSON message (application/json) "
                    + "carries its type in the MT-MessageType header, e.g. urn:message:NvDinoPipeline.Contracts:StartPipeline.");
            }
            return raw.Deserialize(receiveContext);
        }

        public SerializerContext Deserialize(MessageBody body, Headers headers, Uri? destinationAddress = null) =>
            raw.Deserialize(body, headers, destinationAddress);

        public MessageBody GetMessageBody(string text) => raw.GetMessageBody(text);
    }

    /// <summary>A message whose type no consumer here handles: to the error queue, with the reason in its fault headers.</summary>
    private sealed class RefuseUnconsumedFilter(ILogger logger) : IFilter<ReceiveContext>
    {
        public async Task Send(ReceiveContext context, IPipe<ReceiveContext> next)
        {
            var types = context.TransportHeaders.GetMessageTypes();
            var reason = $"The message was refused: no consumer on {context.InputAddress.AbsolutePath.Split('/')[^1]} handles "
                + (types.Length > 0 ? string.Join(", ", types) : "the message types its envelope names") + ".";
            logger.LogWarning("Message {MessageId} ({ContentType}) on {InputAddress} moved to the error queue: {Reason}",
                context.GetMessageId()?.ToString() ?? "without id", context.ContentType?.MediaType, context.InputAddress, reason);
            if (!context.TryGetPayload(out IErrorTransport? errors))
            {
                throw new TransportException(context.InputAddress, "The error transport is not available to refuse an unconsumed message.");
            }
            await errors.Send(new RescueExceptionReceiveContext(context, new MessageNotConsumedException(context.InputAddress, reason)));
            await next.Send(context);
        }

        public void Probe(ProbeContext context) => context.CreateFilterScope("refuseUnconsumed");
    }
}
