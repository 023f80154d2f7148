using System.Globalization;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.Model;
using NvDinoPipeline.Onnx;
using ParityReport = NvDinoPipeline.Deployment.ParityReport;
using static TorchSharp.torch;

namespace NvDinoPipeline.Export.Validation;

/// <summary>One parity check: a batch of the validation images at one input size.</summary>
public sealed record ParityCase(int Batch, int Height, int Width)
{
    public long[] Shape => [Batch, 3, Height, Width];

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"batch {Batch} at {Height}×{Width}");
}

/// <summary>A case's pre-processed input, and what the TorchSharp model computed from it.</summary>
public sealed record ParityReference(ParityCase Case, float[] Input, float[] Cls, float[]? PatchTokens);

/// <summary>
/// Proves the exported graph computes what the trained backbone does: TorchSharp (fp32, eval) and ONNX Runtime (CPU)
/// on the same pre-processed images, at batch 1 and a larger batch, and at a second resolution when H/W are dynamic.
/// The references are computed first so the TorchSharp model can be released before ONNX Runtime loads its own copy.
/// </summary>
public static class ParityValidator
{
    /// <summary>The checks an export gets.</summary>
    public static IReadOnlyList<ParityCase> Plan(ExportSettings settings, int patchSize, int largerBatch)
    {
        ArgumentNullException.ThrowIfNull(settings);
        int height = settings.InputHeight, width = settings.InputWidth;
        var cases = new List<ParityCase>();
        if (settings.DynamicBatch)
        {
            cases.Add(new ParityCase(1, height, width));
            cases.Add(new ParityCase(largerBatch, height, width));
        }
        else
        {
            cases.Add(new ParityCase(settings.BatchSize, height, width));
        }
        if (settings.DynamicHeightWidth)
        {
            // Non-square and off the export size: the in-graph position-embedding interpolation must follow.
            cases.Add(new ParityCase(settings.DynamicBatch ? 2 : settings.BatchSize, height + 2 * patchSize, width + patchSize));
        }
        return cases;
    }

    /// <summary>Pre-processes the images (as <see cref="ImagePreprocessor"/> does for inference) and runs the TorchSharp model.</summary>
    public static IReadOnlyList<ParityReference> ComputeReferences(VisionTransformer model, IReadOnlyList<ParityCase> cases,
        IReadOnlyList<DecodedImage> images, Preprocessing preprocessing, bool includePatchTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(cases);
        ArgumentNullException.ThrowIfNull(images);
        var references = new List<ParityReference>(cases.Count);
        foreach (var parityCase in cases)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var input = Preprocess(parityCase, images, preprocessing);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var output = model.forward_features(tensor(input, parityCase.Shape));
            references.Add(new ParityReference(
                parityCase,
                input,
                output.ClsToken.contiguous().data<float>().ToArray(),
                includePatchTokens ? output.PatchTokens.contiguous().data<float>().ToArray() : null));
        }
        return references;
    }

    /// <summary>Runs the exported model on every reference input and compares; no threshold is applied here.</summary>
    public static ParityReport Compare(OnnxModelRunner runner, IReadOnlyList<ParityReference> references, int embedDim, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(references);
        var checks = new List<ParityCheck>(references.Count);
        foreach (var reference in references)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var outputs = runner.Run(reference.Input, reference.Case.Shape);
            var cls = Output(outputs, VitOnnxBuilder.OutputName, reference.Case);
            var report = OnnxParity.Compare(reference.Cls, cls.Data, embedDim);
            double maxAbs = report.MaxAbsError, minCosine = report.MinCosine;
            if (reference.PatchTokens is { } expectedPatches)
            {
                var patches = Output(outputs, VitOnnxBuilder.PatchTokensName, reference.Case);
                var patchReport = OnnxParity.Compare(expectedPatches, patches.Data, embedDim);
                maxAbs = Math.Max(maxAbs, patchReport.MaxAbsError);
                minCosine = Math.Min(minCosine, patchReport.MinCosine);
            }
            checks.Add(new ParityCheck(reference.Case.Batch, reference.Case.Height, reference.Case.Width, maxAbs, minCosine));
        }
        return new ParityReport
        {
            MaxAbsError = checks.Select(c => c.MaxAbsError).Aggregate(0.0, Math.Max),
            MinCosine = checks.Select(c => c.MinCosine).Aggregate(1.0, Math.Min),
            Checks = checks,
        };
    }

    /// <summary>False when any figure is past its bound or NaN.</summary>
    public static bool IsWithin(ParityReport report, double maxAbsError, double minCosine)
    {
        ArgumentNullException.ThrowIfNull(report);
        return report.Checks.All(c => c.MaxAbsError <= maxAbsError && c.MinCosine >= minCosine);
    }

    public static string Describe(ParityReport report, double maxAbsError, double minCosine)
    {
        ArgumentNullException.ThrowIfNull(report);
        return string.Join("; ", report.Checks.Select(c =>
        {
            var failed = !(c.MaxAbsError <= maxAbsError && c.MinCosine >= minCosine);
            return string.Create(CultureInfo.InvariantCulture,
                $"batch {c.Batch} at {c.Height}×{c.Width}: max |Δ| {c.MaxAbsError:G3}, min cosine {c.MinCosine:F7}{(failed ? " (FAILED)" : "")}");
        }));
    }

    private static float[] Preprocess(ParityCase parityCase, IReadOnlyList<DecodedImage> images, Preprocessing preprocessing)
    {
        if (images.Count < parityCase.Batch)
        {
            throw new ArgumentException($"{parityCase} needs {parityCase.Batch} images; {images.Count} were given.", nameof(images));
        }
        var preprocessor = new ImagePreprocessor(preprocessing with { Height = parityCase.Height, Width = parityCase.Width });
        var input = new float[parityCase.Batch * preprocessor.ImageSize];
        for (var i = 0; i < parityCase.Batch; i++)
        {
            var image = images[i];
            preprocessor.Preprocess(image.Pixels, image.Width, image.Height, input.AsSpan(i * preprocessor.ImageSize, preprocessor.ImageSize));
        }
        return input;
    }

    private static OnnxTensor Output(IReadOnlyList<OnnxTensor> outputs, string name, ParityCase parityCase) =>
        outputs.SingleOrDefault(o => o.Name == name)
        ?? throw new InvalidOperationException($"The exported model produced no '{name}' output for {parityCase}.");
}
