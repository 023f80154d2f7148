using System.Formats.Tar;
using System.IO.Compression;

namespace NvDinoPipeline.Staging.Tests;

/// <summary>Builds tar, tar.gz and zip archives entry by entry, hostile entries included.</summary>
internal sealed class TestArchive
{
    private readonly List<Action<TarWriter>> _tarEntries = [];
    private readonly List<Action<ZipArchive>> _zipEntries = [];

    public TestArchive File(string name, byte[] content)
    {
        _tarEntries.Add(tar =>
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) };
            tar.WriteEntry(entry);
        });
        _zipEntries.Add(zip =>
        {
            using var data = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
            data.Write(content);
        });
        return this;
    }

    public TestArchive Directory(string name)
    {
        _tarEntries.Add(tar => tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name)));
        _zipEntries.Add(zip => zip.CreateEntry(name.TrimEnd('/') + "/"));
        return this;
    }

    public TestArchive SymbolicLink(string name, string target)
    {
        _tarEntries.Add(tar => tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target }));
        _zipEntries.Add(zip =>
        {
            var entry = zip.CreateEntry(name);
            entry.ExternalAttributes = unchecked((int)(0xA1FFu << 16));
            using var data = entry.Open();
            data.Write(System.Text.Encoding.UTF8.GetBytes(target));
        });
        return this;
    }

    public TestArchive HardLink(string name, string target)
    {
        _tarEntries.Add(tar => tar.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target }));
        return this;
    }

    public TestArchive Special(string name, TarEntryType type)
    {
        _tarEntries.Add(tar => tar.WriteEntry(new PaxTarEntry(type, name)));
        return this;
    }

    public string WriteTar(string path)
    {
        using var file = System.IO.File.Create(path);
        WriteTarTo(file);
        return path;
    }

    public string WriteTarGz(string path)
    {
        using var file = System.IO.File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        WriteTarTo(gzip);
        return path;
    }

    public string WriteZip(string path)
    {
        using var file = System.IO.File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        foreach (var add in _zipEntries)
        {
            add(zip);
        }
        return path;
    }

    private void WriteTarTo(Stream stream)
    {
        using var tar = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true);
        foreach (var add in _tarEntries)
        {
            add(tar);
        }
    }

    /// <summary>
    /// A tar.gz holding <paramref name="zeroBytes"/> of zeros in one entry (plus <paramref name="after"/>),
    /// written streaming: the zeros never exist in memory. 1 GiB packs into about 1 MB.
    /// </summary>
    public static string WriteZeroBomb(string path, long zeroBytes, params (string Name, byte[] Content)[] after)
    {
        using var file = System.IO.File.Create(path);
        // Optimal packs zeros about 1000:1; Fastest only about 100:1.
        using var gzip = new GZipStream(file, CompressionLevel.Optimal);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "zeros.png") { DataStream = new ZeroStream(zeroBytes) });
        foreach (var (name, content) in after)
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });
        }
        return path;
    }
}

/// <summary>A seekable stream of zeros of a given length that allocates nothing per read.</summary>
internal sealed class ZeroStream(long length) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position { get; set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var count = (int)Math.Min(buffer.Length, length - Position);
        buffer[..count].Clear();
        Position += count;
        return count;
    }

    public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => Position + offset,
        _ => length + offset,
    };

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
