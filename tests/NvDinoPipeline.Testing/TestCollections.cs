namespace NvDinoPipeline.Testing;

/// <summary>
/// Names for xunit collections sharing one service fixture. xunit only reads collection definitions
/// from the test assembly itself, so each test project declares the ones it uses, e.g.
/// <code>
/// [CollectionDefinition(TestCollections.RabbitMq)]
/// public sealed class RabbitMqCollection : ICollectionFixture&lt;RabbitMqFixture&gt;;
/// </code>
/// and marks test classes with <c>[Collection(TestCollections.RabbitMq)]</c>.
/// </summary>
public static class TestCollections
{
    public const string RabbitMq = "RabbitMQ";
    public const string Postgres = "PostgreSQL";
    public const string S3 = "S3";
}
