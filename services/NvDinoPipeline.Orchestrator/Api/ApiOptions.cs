using System.ComponentModel.DataAnnotations;
using System.Net;
using NvDinoPipeline.Hosting.Health;

namespace NvDinoPipeline.Orchestrator.Api;

/// <summary>What a token may do: read everything (pipelines, jobs, logs, artifacts, metrics), or also start, cancel and resume.</summary>
public enum ApiAccess
{
    Read,
    Control,
}

public sealed class ApiToken
{
    /// <summary>The secret, at least 16 characters; never logged.</summary>
    public string Token { get; set; } = "";

    public ApiAccess Access { get; set; } = ApiAccess.Read;
}

/// <summary>
/// The HTTP API and dashboard the orchestrator (and the embedded host) serves, section <c>Api</c>. On by default, on
/// 127.0.0.1 and a free port that the process records with its heartbeat (where the CLI finds it). Bound beyond the
/// loopback interface it requires tokens; with tokens configured every request must carry one.
/// </summary>
public sealed class ApiOptions : IValidatableObject
{
    public const string SectionName = "Api";

    public bool Enabled { get; set; } = true;

    /// <summary>TCP port; 0 takes a free one.</summary>
    [Range(0, 65535)]
    public int Port { get; set; }

    /// <summary>One IP address or host name to listen on, or <c>*</c> for every interface.</summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>Bearer tokens and what each may do. Empty: no token is asked for, which only a loopback address allows.</summary>
    public List<ApiToken> Tokens { get; set; } = [];

    /// <summary>Whether the API listens on this host only (127.0.0.0/8, ::1, localhost).</summary>
    public bool IsLoopback => Address.Trim() is var address
        && (string.Equals(address, "localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(address.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip)));

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enabled)
        {
            yield break;
        }
        var address = Address?.Trim() ?? "";
        var wildcard = address is "*" or "+" or "0.0.0.0" or "::" or "[::]";
        if (!wildcard && Uri.CheckHostName(address.Trim('[', ']')) == UriHostNameType.Unknown)
        {
            yield return new ValidationResult($"Api:Address must be '*' (every interface), a host name or an IP address, got '{Address}'.", [nameof(Address)]);
        }
        for (var i = 0; i < Tokens.Count; i++)
        {
            // The value itself is never repeated: it is a secret.
            if (!BearerTokens.WellFormed(Tokens[i].Token ?? ""))
            {
                yield return new ValidationResult($"Api:Tokens:{i}:Token must be at least 16 characters without spaces.", [nameof(Tokens)]);
            }
        }
        if (!IsLoopback && Tokens.Count == 0)
        {
            yield return new ValidationResult(
                $"Api:Address '{Address}' is not a loopback address, so the API needs tokens: set Api:Tokens:0:Token (and Api:Tokens:0:Access Control or Read), "
                + "or bind it to 127.0.0.1, or set Api:Enabled false.", [nameof(Tokens)]);
        }
    }
}
