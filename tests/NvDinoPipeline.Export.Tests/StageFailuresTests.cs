using System.Net.Sockets;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Export.Tests;

/// <summary>Which failures a stage retries: an unreachable store is; a wrong input or a refused request is not.</summary>
public sealed class StageFailuresTests
{
    private static readonly Uri Location = new("s3://bucket/artifacts/model.onnx");

    [Fact]
    public void A_store_that_is_unreachable_or_answers_5xx_is_retried_also_when_a_stage_wrapped_the_error()
    {
        var unreachable = new ArtifactStoreException(Location, "S3 endpoint is unreachable", new SocketException(111), transient: true);

        Assert.True(StageFailures.IsTransient(unreachable));
        Assert.True(StageFailures.IsTransient(new InvalidDataException("could not read the archive", unreachable)));
        Assert.True(StageFailures.IsTransient(new HttpIOException(HttpRequestError.ResponseEnded, "the response ended prematurely")));
        // Seen in the fault campaign: distillation called its teacher checkpoint unreadable while the store was down.
        Assert.True(StageFailures.IsTransient(new StageInputException("The teacher checkpoint cannot be read", unreachable)));
    }

    [Fact]
    public void A_refused_request_or_a_wrong_input_is_not_retried_whatever_it_wraps()
    {
        var denied = new ArtifactStoreException(Location, "access denied", transient: false);

        Assert.False(StageFailures.IsTransient(denied));
        Assert.False(StageFailures.IsTransient(new InvalidOperationException("wrapped", denied)));
        Assert.False(StageFailures.IsTransient(new StageInputException("images_train.tar is not an archive", new TimeoutException())));
        Assert.False(StageFailures.IsTransient(new StageUnavailableException("no TensorRT", new SocketException(111))));
    }
}
