using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace NvDinoPipeline.Storage;

public static class ArtifactStoreServiceCollectionExtensions
{
    /// <summary>Registers <see cref="IArtifactStore"/> (a singleton <see cref="ArtifactStore"/>) with
    /// <see cref="ArtifactStoreOptions"/> bound to the section <c>ArtifactStore</c> and validated at start-up.</summary>
    public static IServiceCollection AddArtifactStore(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddOptions<ArtifactStoreOptions>()
            .Bind(configuration.GetSection(ArtifactStoreOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ArtifactStoreOptions>, ArtifactStoreOptionsValidator>());
        services.TryAddSingleton<ArtifactStore>();
        services.TryAddSingleton<IArtifactStore>(sp => sp.GetRequiredService<ArtifactStore>());
        return services;
    }
}
