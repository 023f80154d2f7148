using Amazon.Runtime;
using Amazon.Runtime.Internal;
using Amazon.S3;

namespace NvDinoPipeline.Storage.S3;

/// <summary>
/// An S3 client for S3-compatible servers (s3rver, MinIO-like endpoints given by a service URL).
/// <list type="bullet">
/// <item>It never sends aws-chunked bodies. AWSSDK.S3 v4 frames uploads over plain HTTP as aws-chunked with
/// per-chunk signatures; s3rver stores that framing verbatim as the object and still answers 200. The
/// request's chunk encoding must be turned off before <see cref="ChecksumHandler"/>, which chooses between a
/// trailing (chunked) and a header checksum, and before the signer.</item>
/// <item>It sends <c>x-amz-copy-source</c> as <c>bucket/key</c> with literal slashes. The SDK escapes them
/// as %2F, which S3 accepts but s3rver does not decode (it then reports the source bucket missing).</item>
/// </list>
/// </summary>
internal sealed class CompatibleS3Client : AmazonS3Client
{
    public CompatibleS3Client(AWSCredentials credentials, AmazonS3Config config)
        : base(credentials, config)
    {
    }

    public CompatibleS3Client(AmazonS3Config config)
        : base(config)
    {
    }

    protected override void CustomizeRuntimePipeline(RuntimePipeline pipeline)
    {
        base.CustomizeRuntimePipeline(pipeline);
        pipeline.AddHandlerBefore<ChecksumHandler>(new CompatibleRequestHandler());
    }

    private sealed class CompatibleRequestHandler : PipelineHandler
    {
        private const string CopySourceHeader = "x-amz-copy-source";

        public override void InvokeSync(IExecutionContext executionContext)
        {
            Adjust(executionContext.RequestContext.Request);
            base.InvokeSync(executionContext);
        }

        public override Task<T> InvokeAsync<T>(IExecutionContext executionContext)
        {
            Adjust(executionContext.RequestContext.Request);
            return base.InvokeAsync<T>(executionContext);
        }

        private static void Adjust(IRequest request)
        {
            request.UseChunkEncoding = false;
            if (request.Headers.TryGetValue(CopySourceHeader, out var copySource))
            {
                request.Headers[CopySourceHeader] = copySource.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
            }
        }
    }
}
