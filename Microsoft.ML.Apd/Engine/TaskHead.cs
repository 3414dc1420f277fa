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

    private readonly SharedOwners _owners = new();

    /// <summary>The same head for another network: it is immutable, so both hold this object (see <see cref="SharedOwners"/>).</summary>
    public TaskHead Share()
    {
        _owners.Add();
        return this;
    }

    public void Dispose()
    {
        if (!_owners.Release()) return;
        Weight.Dispose();
        Bias.Dispose();
    }
}
