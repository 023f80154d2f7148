using System.Net;

namespace NvDinoPipeline.Hosting.Health;

/// <summary>The addresses an HTTP endpoint's configured address stands for.</summary>
public static class ListenAddresses
{
    public static bool IsWildcard(string address) => address.Trim() is "*" or "+" or "0.0.0.0" or "::" or "[::]";

    /// <summary>Null for every interface (a wildcard), else the addresses the IP address or host name stands for.</summary>
    /// <param name="setting">The setting's name, for errors (<c>Api:Address</c>).</param>
    public static IReadOnlyList<IPAddress>? Resolve(string address, string setting)
    {
        address = address.Trim();
        if (IsWildcard(address))
        {
            return null;
        }
        if (IPAddress.TryParse(address.Trim('[', ']'), out var ip))
        {
            return [ip];
        }
        try
        {
            var resolved = Dns.GetHostAddresses(address);
            return resolved.Length > 0
                ? resolved
                : throw new InvalidOperationException($"{setting} '{address}' resolves to no address.");
        }
        catch (System.Net.Sockets.SocketException exception)
        {
            throw new InvalidOperationException($"{setting} '{address}' cannot be resolved: {exception.Message}", exception);
        }
    }
}
