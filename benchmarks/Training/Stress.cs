using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Benchmarks.Training;

internal static class Stress
{
    public static void Run(int seconds, int workers)
    {
        var train = FashionMnist.Load("train", 20000);
        var data = new SslDataOptions
        {
            BatchSize = 64, PatchSize = 14,
            Crops = new MultiCropOptions { GlobalCropsSize = 56, LocalCropsSize = 28, LocalCropsNumber = 4, GlobalCropsScale = (0.35, 1.0), LocalCropsScale = (0.1, 0.35), BlurKernelSize = 5 },
            Workers = workers, PrefetchBatches = 4,
        };
        var loader = new SslBatchLoader(new InMemoryImageSource(train.Images), data, 1);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long batches = 0, checks = 0;
        for (var epoch = 0; clock.Elapsed.TotalSeconds < seconds; epoch++)
        {
            foreach (var batch in loader.Epoch(epoch))
            {
                using (batch)
                using (var scope = torch.NewDisposeScope())
                {
                    for (var i = 0; i < 20; i++)
                    {
                        var x = torch.randn(64, 17, 384);
                        var y = x.reshape(64, 17, 3, 4, 32).permute(2, 0, 3, 1, 4);
                        checks++;
                        if (y.shape[0] != 3) throw new InvalidOperationException("bad shape");
                    }
                    batches++;
                }
                if (clock.Elapsed.TotalSeconds >= seconds) break;
            }
        }
        Console.WriteLine($"stress ok: {batches} batches, {checks} permutes in {clock.Elapsed.TotalSeconds:F0} s");
    }
}
