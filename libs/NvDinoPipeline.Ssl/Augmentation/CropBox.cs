namespace NvDinoPipeline.Ssl.Augmentation;

/// <summary>A crop rectangle in pixels: top-left corner and size.</summary>
public readonly record struct CropBox(int Top, int Left, int Height, int Width);
