namespace NvDinoPipeline.Datasets.Shards;

/// <summary>Layout constants of a shard file; SHARDS.md describes the format in full.</summary>
public static class ShardFormat
{
    public const ushort Version = 1;
    public const ushort Channels = 3;
    public const int HeaderBytes = 16;
    public const int IndexEntryBytes = 56;
    public const int FooterBytes = 24;
    public const string DatasetFileName = "dataset.json";
    public const string DatasetFormatName = "nvdino-rgb-shards";

    public static ReadOnlySpan<byte> HeaderMagic => "NVDSHARD"u8;

    public static ReadOnlySpan<byte> FooterMagic => "NVDSHEND"u8;

    public static string FileName(int shardIndex) => $"shard-{shardIndex:D5}.bin";
}
