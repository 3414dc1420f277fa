using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>A task's own output layer (plain linear, not decomposed): logits = x Wᵀ + b.</summary>
internal sealed class TaskHead : IDisposable
{
    public TaskHead(Tensor weight, Tensor bias)
    {
        Weight = weight;
        Bias = bias;
    }

    /// <summary>[classes, in].</summary>
    public Tensor Weight { get; }
    /// <summary>[classes].</summary>
    public Tensor Bias { get; }
    public int ClassCount => (int)Weight.shape[0];

    /// <summary>The same head for another network: new handles on the same immutable tensors (nothing copied).</summary>
    public TaskHead Share() => new(TensorOwnership.Share(Weight), TensorOwnership.Share(Bias));

    public void Dispose()
    {
        Weight.Dispose();
        Bias.Dispose();
    }
}
