namespace Microsoft.ML.Apd.Engine;

/// <summary>One convolution block: conv (KernelSize×KernelSize, stride 1, no padding) → ReLU → 2×2 max-pool.</summary>
internal sealed record ConvolutionBlock(int OutputChannels, int KernelSize = 5)
{
    /// <summary>The block's output for <paramref name="input"/>: the one home of the size rule (convolution without
    /// padding: −KernelSize+1; 2×2 max-pooling: ÷2, rounded down). A side ≤ 0 means the input is too small.</summary>
    public ImageLayout OutputOf(ImageLayout input) =>
        new(OutputChannels, (input.Height - KernelSize + 1) / 2, (input.Width - KernelSize + 1) / 2);
}

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
    public long HeadInputSize => HiddenLayerSizes.Count > 0 ? HiddenLayerSizes[^1] : ConvolutionOutput?.Size ?? InputSize;

    /// <summary>The image after every convolution block (<see cref="ConvolutionBlock.OutputOf"/>), or null without blocks.</summary>
    public ImageLayout? ConvolutionOutput => ConvolutionBlocks.Count == 0 || Image is null ? null
        : ConvolutionBlocks.Aggregate(Image, (image, block) => block.OutputOf(image));
}
