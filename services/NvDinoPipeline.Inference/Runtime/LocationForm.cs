namespace NvDinoPipeline.Inference;

public static class LocationForm
{
    /// <summary>
    /// A location as an absolute URI. A <c>Uri</c> made from a local path (<c>new Uri("/data/x")</c>) serialises as
    /// the bare path and reads back as a relative URI; such a rooted path is taken as the <c>file://</c> URI it meant.
    /// </summary>
    public static Uri Absolute(Uri location)
    {
        ArgumentNullException.ThrowIfNull(location);
        if (location.IsAbsoluteUri)
        {
            return location;
        }
        return Path.IsPathRooted(location.OriginalString)
            ? new Uri(new Uri(location.OriginalString, UriKind.Absolute).AbsoluteUri)
            : location;
    }
}
