using NvDinoPipeline.Staging.Sources;

namespace NvDinoPipeline.Staging.Tests;

public sealed class EntryPathTests
{
    [Theory]
    [InlineData("cats/1.png", "cats/1.png")]
    [InlineData("./cats//deep/./1.png", "cats/deep/1.png")]
    [InlineData("windows\\style\\1.bmp", "windows/style/1.bmp")]
    [InlineData("dots..in..name.png", "dots..in..name.png")]
    public void Keeps_plain_relative_names_in_a_clean_form(string name, string expected)
    {
        Assert.Equal(expected, EntryPath.Normalize(name, out _));
    }

    [Theory]
    [InlineData("../escape.png", "'..'")]
    [InlineData("cats/../../escape.png", "'..'")]
    [InlineData("..\\..\\escape.png", "'..'")]
    [InlineData("/etc/passwd", "absolute")]
    [InlineData("\\\\server\\share\\x.png", "absolute")]
    [InlineData("C:/Windows/x.png", "drive letter")]
    [InlineData("bad\nname.png", "control characters")]
    [InlineData("", "empty")]
    [InlineData("./", "no file name")]
    public void Refuses_names_that_could_leave_the_dataset_and_says_why(string name, string reason)
    {
        Assert.Null(EntryPath.Normalize(name, out var why));
        Assert.Contains(reason, why);
    }
}
