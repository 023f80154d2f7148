namespace NvDinoPipeline.Storage.S3;

/// <summary>Bucket and key of an <c>s3://bucket/key</c> URI (the key unescaped; empty for the bucket root).</summary>
internal readonly record struct S3Location(string Bucket, string Key)
{
    public static S3Location Parse(Uri uri, string paramName)
    {
        if (!uri.IsAbsoluteUri || uri.Scheme != ArtifactLocations.S3Scheme)
        {
            throw new ArgumentException($"'{uri}' is not an s3:// URI.", paramName);
        }

        var bucket = uri.Host;
        if (bucket.Length is < 3 or > 63 || !bucket.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.'))
        {
            throw new ArgumentException(
                $"'{uri}' does not name a valid bucket ('{bucket}'): 3-63 characters of lower-case letters, digits, '-' and '.'.", paramName);
        }

        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            throw new ArgumentException($"'{uri}' has a query or fragment; escape '?' and '#' in keys as %3F and %23.", paramName);
        }

        var key = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        return new S3Location(bucket, key);
    }

    public Uri ToUri() => new($"s3://{Bucket}/{ArtifactLocations.EscapePath(Key)}");

    public S3Location WithKey(string key) => this with { Key = key };
}
