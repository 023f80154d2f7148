using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Hosting.Health;

/// <summary>
/// The process's health endpoints (<c>/healthz</c>, <c>/readyz</c>), bound to the configuration section
/// <c>Health</c>. Off unless a port is set: containers set <c>Health__Port=8080</c>.
/// </summary>
public sealed class HealthOptions : IValidatableObject
{
    public const string SectionName = "Health";

    /// <summary>TCP port of the endpoints; 0 serves none.</summary>
    [Range(0, 65535)]
    public int Port { get; set; }

    /// <summary>
    /// Where to listen: one host name or IP address, listened on alone
    /// (by default <c>127.0.0.1</c>, this host only), or <c>*</c> for every interface (Kubernetes probes).
    /// </summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>Longest time a readiness check may take before it counts as failed.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan CheckTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// When set, <c>/metrics</c> answers only requests carrying <c>Authorization: Bearer &lt;token&gt;</c> (the probes stay
    /// open: they reveal a status only). Never logged. Set it where the endpoints listen beyond this host.
    /// </summary>
    public string? MetricsToken { get; set; }

    public bool Enabled => Port > 0;

    /// <summary>Where the endpoints answer, as a URL prefix, e.g. <c>http://+:8080/</c> (every interface).</summary>
    public string Prefix
    {
        get
        {
            var host = Address.Trim() switch
            {
                "*" or "+" or "0.0.0.0" or "::" or "[::]" => "+",
                var name when name.Contains(':') && !name.StartsWith('[') => $"[{name}]",
                var name => name,
            };
            return $"http://{host}:{Port}/";
        }
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var address = Address?.Trim() ?? "";
        var wildcard = address is "*" or "+" or "0.0.0.0" or "::" or "[::]";
        if (!wildcard && Uri.CheckHostName(address.Trim('[', ']')) == UriHostNameType.Unknown)
        {
            yield return new ValidationResult(
                $"Health:Address must be '*' (every interface), a host name or an IP address, got '{Address}'.", [nameof(Address)]);
        }
        if (MetricsToken is { } token && !BearerTokens.WellFormed(token))
        {
            // The value itself is never repeated: it is a secret.
            yield return new ValidationResult("Health:MetricsToken must be at least 16 characters without spaces.", [nameof(MetricsToken)]);
        }
    }
}
