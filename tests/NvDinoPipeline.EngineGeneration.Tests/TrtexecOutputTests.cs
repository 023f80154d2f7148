using NvDinoPipeline.EngineGeneration.TensorRt;

namespace NvDinoPipeline.EngineGeneration.Tests;

public sealed class TrtexecOutputTests
{
    [Fact]
    public void Reads_every_tensor_of_an_exported_output_file()
    {
        const string text = """
            [
             { "name" : "output"
              , "dimensions" : "2x3"
              , "values" : [ 0.5, -1.25, 3, 1e-3, 2, -0 ]
              }
            , { "name" : "patch_tokens"
              , "dimensions" : "2x1x1"
              , "values" : [ 7, 8 ]
              }
            ]
            """;

        var tensors = TrtexecOutput.Parse(text, "out.json");

        Assert.Equal(["output", "patch_tokens"], tensors.Select(t => t.Name));
        Assert.Equal([2L, 3L], tensors[0].Dimensions);
        Assert.Equal([0.5f, -1.25f, 3f, 1e-3f, 2f, -0f], tensors[0].Values);
    }

    [Fact]
    public void Keeps_non_finite_values_that_trtexec_prints_bare()
    {
        var tensors = TrtexecOutput.Parse("""[ { "name" : "output" , "dimensions" : "1x3" , "values" : [ nan, inf, -inf ] } ]""", "out.json");

        Assert.True(float.IsNaN(tensors[0].Values[0]));
        Assert.Equal(float.PositiveInfinity, tensors[0].Values[1]);
        Assert.Equal(float.NegativeInfinity, tensors[0].Values[2]);
    }

    [Fact]
    public void Rejects_a_file_whose_value_count_disagrees_with_its_dimensions()
    {
        var error = Assert.Throws<InvalidDataException>(() =>
            TrtexecOutput.Parse("""[ { "name" : "output" , "dimensions" : "2x2" , "values" : [ 1, 2, 3 ] } ]""", "out.json"));

        Assert.Contains("3 values", error.Message);
        Assert.Contains("out.json", error.Message);
    }
}
