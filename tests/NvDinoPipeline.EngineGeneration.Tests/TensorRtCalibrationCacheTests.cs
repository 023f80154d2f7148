using NvDinoPipeline.Quantization;

namespace NvDinoPipeline.EngineGeneration.Tests;

public sealed class TensorRtCalibrationCacheTests
{
    private static readonly CalibrationTable Table = new()
    {
        Method = "entropy",
        Images = 80,
        Batches = 10,
        ModelSha256 = "00",
        Tensors = new Dictionary<string, TensorRange>
        {
            ["input"] = new(-2.1, 2.6, 2.6),
            ["/blocks.0/norm1/LayerNormalization_output_0"] = new(-11.5, 9.25, 7.875),
            ["/blocks.0/attn/Reshape_output_0"] = new(0, 0, 0),
        },
    };

    [Fact]
    public void Writes_the_header_and_one_hex_float_scale_per_tensor()
    {
        var text = TensorRtCalibrationCache.Write(Table, 100300);

        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("TRT-100300-EntropyCalibration2", lines[0]);
        // 2.6 / 127 = 0.020472441 as float32 bits 0x3ca7b5d2.
        Assert.Contains("input: 3ca7b5d2", lines);
        Assert.Equal(4, lines.Length);
    }

    [Fact]
    public void Round_trips_every_scale_bit_for_bit()
    {
        var (version, calibrator, scales) = TensorRtCalibrationCache.Parse(TensorRtCalibrationCache.Write(Table, 8601), "calibration.cache");

        Assert.Equal((8601L, "EntropyCalibration2"), (version, calibrator));
        Assert.Equal(Table.Tensors.ToDictionary(t => t.Key, t => BitConverter.SingleToUInt32Bits(t.Value.Scale)),
            scales.ToDictionary(s => s.Key, s => BitConverter.SingleToUInt32Bits(s.Value)));
    }

    [Fact]
    public void Reads_a_cache_as_tensorrt_writes_it()
    {
        var (version, calibrator, scales) = TensorRtCalibrationCache.Parse("TRT-7103-EntropyCalibration2\ndata_0: 4000889d\n(Unnamed Layer* 3) [Convolution]_output: 3706ff72\n", "trt.cache");

        Assert.Equal((7103L, "EntropyCalibration2"), (version, calibrator));
        Assert.Equal(2.0083382f, scales["data_0"]);
        Assert.Equal(2, scales.Count);
    }

    [Theory]
    [InlineData("{\"format\": \"nvdino.calibration/1\"}", "does not start with 'TRT-<version>-<calibrator>'")]
    [InlineData("TRT-8601-EntropyCalibration2\ninput 3ca7b4a9\n", "Line 2")]
    [InlineData("TRT-8601-EntropyCalibration2\ninput: 7fc00000\n", "the scale NaN")]
    public void Something_else_is_refused_naming_the_file_and_the_line(string text, string reason)
    {
        var error = Assert.Throws<InvalidDataException>(() => TensorRtCalibrationCache.Parse(text, "bad.cache"));

        Assert.Contains("bad.cache", error.Message);
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void A_tensor_name_with_a_colon_cannot_be_written() =>
        Assert.Throws<ArgumentException>(() => TensorRtCalibrationCache.Write(Table with { Tensors = new Dictionary<string, TensorRange> { ["a:b"] = new(0, 1, 1) } }, 100300));
}
