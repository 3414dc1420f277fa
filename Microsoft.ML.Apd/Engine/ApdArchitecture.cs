namespace Microsoft.ML.Apd.Engine;

/// <summary>One convolution block: conv (KernelSize×KernelSize, stride 1, no padding) → ReLU → 2×2 max-pool.</summary>
internal sealed record ConvolutionBlock(int OutputChannels, int KernelSize = 5);

/// <summary>Image layout of a feature vector, for convolutional architectures (row-major C·H·W).</summary>
internal sealed record ImageLayout(int Channels, int Height, int Width)
{
    public int Size => Channels * Height * Width;
}

/// <summary>
/// Shape of an APD network: optional convolution blocks (need <see cref="Image"/>), then fully-connected layers
/// with ReLU, then one head per task. Every conv and fully-connected layer is decomposed (σ, M_t, τ_t, b_t).
/// </summary>
internal sealed record ApdArchitecture(int InputSize, IReadOnlyList<int> HiddenLayerSizes,
    IReadOnlyList<ConvolutionBlock> ConvolutionBlocks, ImageLayout? Image)
{
    /// <summary>Width of the last hidden representation (input of the heads).</summary>
    public long HeadInputSize => HiddenLayerSizes.Count > 0 ? HiddenLayerSizes[^1]
        : ConvolutionBlocks.Count > 0 ? ConvolutionOutputSize() : InputSize;

    private long ConvolutionOutputSize()
    {
        long c = Image!.Channels, h = Image.Height, w = Image.Width;
        foreach (var block in ConvolutionBlocks)
        {
            c = block.OutputChannels;
            h = (h - block.KernelSize + 1) / 2;
            w = (w - block.KernelSize + 1) / 2;
        }
        return c * h * w;
    }
}
