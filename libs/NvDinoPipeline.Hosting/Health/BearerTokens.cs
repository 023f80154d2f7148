using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace NvDinoPipeline.Hosting.Health;

/// <summary>Bearer tokens as the HTTP endpoints check them: read from <c>Authorization</c>, compared in constant time.</summary>
public static class BearerTokens
{
    private const string Scheme = "Bearer ";

    /// <summary>The request's bearer token; null when it carries none.</summary>
    public static string? Of(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) && header[Scheme.Length..].Trim() is { Length: > 0 } token
            ? token
            : null;
    }

    /// <summary>Whether <paramref name="given"/> is <paramref name="expected"/>, in a time that does not depend on where they differ.</summary>
    public static bool Same(string? given, string expected) =>
        given is not null && CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));

    /// <summary>A token fit to configure: at least 16 characters, no white space.</summary>
    public static bool WellFormed(string token) => token.Trim().Length >= 16 && !token.Any(char.IsWhiteSpace);
}
