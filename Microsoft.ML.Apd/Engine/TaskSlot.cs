using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// One task's private part of one decomposed layer, as stored between trainings: mask logits v_t (M_t = sigmoid(v_t),
/// one per output unit / channel), bias b_t, the thresholded adaptive weights τ_t (sparse), the low-rank adaptive
/// part U_t V_tᵀ when the task has one, after a consolidation the id of the cluster whose locally-shared σ̃_g the
/// task uses and, once the task stopped following σ, the id of its <see cref="FrozenCohort"/>.
/// </summary>
internal sealed class TaskSlot : IDisposable
{
    public TaskSlot(Tensor maskLogits, Tensor bias, SparseAdaptive adaptive, int? group = null, LowRankAdaptive? lowRank = null, int? frozenOn = null)
    {
        MaskLogits = maskLogits;
        Bias = bias;
        Adaptive = adaptive;
        Group = group;
        LowRank = lowRank;
        FrozenOn = frozenOn;
    }

    /// <summary>v_t, [out].</summary>
    public Tensor MaskLogits { get; }
    /// <summary>b_t, [out].</summary>
    public Tensor Bias { get; }
    /// <summary>τ_t after the hard threshold |τ| ≤ λ₁ ⇒ 0.</summary>
    public SparseAdaptive Adaptive { get; private set; }
    /// <summary>U_t V_tᵀ (null: none; see <see cref="ApdHyperparameters.LowRankAdaptiveRank"/>).</summary>
    public LowRankAdaptive? LowRank { get; }
    /// <summary>Cluster g(t) of the last consolidation (null before the task's first consolidation). The cluster has a
    /// locally-shared σ̃_g only when it had more than one member; its members' mean is the next K-means start.</summary>
    public int? Group { get; set; }
    /// <summary>The cohort (<see cref="DecomposedLayer.Frozen"/>) whose σ_c and σ̃_{c,g} the task uses since it stopped
    /// following σ; null while it follows σ (the retroactive update keeps its θ as σ moves).</summary>
    public int? FrozenOn { get; set; }

    /// <summary>Replaces τ_t (disposing the old one).</summary>
    public void ReplaceAdaptive(SparseAdaptive adaptive)
    {
        if (!ReferenceEquals(adaptive, Adaptive)) Adaptive.Dispose();
        Adaptive = adaptive;
    }

    private readonly SharedOwners _owners = new();

    /// <summary>The same slot for another network. A frozen task's slot never changes again (nothing writes τ, the
    /// group or the cohort of a task that stopped following σ), so both networks hold this object (see
    /// <see cref="SharedOwners"/>); a following task's slot is a new object, with new handles on the same immutable
    /// tensors (nothing copied), as training and consolidation replace its τ and group in one network only.</summary>
    public TaskSlot Share()
    {
        if (FrozenOn is null)
            return new(TensorOwnership.Share(MaskLogits), TensorOwnership.Share(Bias), Adaptive.Share(), Group, LowRank?.Share(), FrozenOn);
        _owners.Add();
        return this;
    }

    public void Dispose()
    {
        if (!_owners.Release()) return;
        MaskLogits.Dispose();
        Bias.Dispose();
        Adaptive.Dispose();
        LowRank?.Dispose();
    }
}
