using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// One layer's part of a cohort of tasks that stopped following σ together (see
/// <see cref="ApdHyperparameters.RetroactiveWindow"/>): σ as it was when they stopped, and the locally-shared σ̃_g of
/// their clusters. Their θ_i = σ_c ⊙ M_i + σ̃_{c,g(i)} + τ_i never changes again, so the retroactive update and
/// consolidation leave them out and their cost stops growing with them. Immutable like every stored tensor.
/// </summary>
internal sealed class FrozenCohort : IDisposable
{
    public FrozenCohort(Tensor shared, Dictionary<int, SparseAdaptive> locallyShared)
    {
        Shared = shared;
        LocallyShared = locallyShared;
    }

    /// <summary>σ_c: a handle on σ as it was at the freeze (no copy while the network lives; a saved model stores it).</summary>
    public Tensor Shared { get; }
    /// <summary>σ̃_{c,g} by cluster id of the cohort's last consolidation; dropped with the last member that uses it.</summary>
    public Dictionary<int, SparseAdaptive> LocallyShared { get; }

    /// <summary>The same cohort for another network: new handles, nothing copied.</summary>
    public FrozenCohort Share() => new(TensorOwnership.Share(Shared), LocallyShared.ToDictionary(p => p.Key, p => p.Value.Share()));

    public void Dispose()
    {
        Shared.Dispose();
        foreach (var local in LocallyShared.Values) local.Dispose();
        LocallyShared.Clear();
    }
}
