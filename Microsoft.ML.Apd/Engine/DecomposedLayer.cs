using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// What fully-connected and convolution layers share in APD: the shared weights σ, one <see cref="TaskSlot"/> per task,
/// the locally-shared tensors σ̃_g of the last consolidation and the <see cref="FrozenCohort"/>s of tasks that stopped
/// following σ. A task's effective weights are θ_t = σ ⊙ M_t + (σ̃_{g(t)} + τ_t [+ U_t V_tᵀ]), M_t = sigmoid(v_t)
/// broadcast over everything but the output dimension, with σ and σ̃ its cohort's once it is frozen.
/// </summary>
internal abstract class DecomposedLayer : IDisposable
{
    protected DecomposedLayer(Tensor shared) => Shared = shared;

    /// <summary>σ, [out, ...]. Replaced (not mutated in place) by the learner after each task.</summary>
    public Tensor Shared { get; private set; }
    public Dictionary<string, TaskSlot> Slots { get; } = new();
    /// <summary>σ̃_g by cluster id (only clusters with more than one task at consolidation time).</summary>
    public Dictionary<int, SparseAdaptive> LocallyShared { get; } = new();
    /// <summary>Frozen cohorts by id (<see cref="TaskSlot.FrozenOn"/>); a cohort is dropped with its last task.</summary>
    public Dictionary<int, FrozenCohort> Frozen { get; } = new();

    public long OutputCount => Shared.shape[0];
    public long[] WeightShape => Shared.shape;
    public long WeightCount => Shared.numel();
    /// <summary>Shape that broadcasts a per-output mask over the weights: [out, 1] or [out, 1, 1, 1].</summary>
    public long[] MaskShape => [OutputCount, .. Enumerable.Repeat(1L, (int)Shared.dim() - 1)];
    /// <summary>Short name for reports ("fc1", "conv1").</summary>
    public abstract string Kind { get; }

    /// <summary>Applies the layer with effective weights θ and bias b, including its activation (and pooling).</summary>
    public abstract Tensor Apply(Tensor input, Tensor theta, Tensor bias);

    /// <summary>A layer of the same kind around <paramref name="shared"/> (no tasks).</summary>
    public abstract DecomposedLayer CreateSibling(Tensor shared);

    /// <summary>M = sigmoid(v) shaped to broadcast over σ.</summary>
    public Tensor Mask(Tensor maskLogits) => sigmoid(maskLogits).reshape(MaskShape);

    /// <summary>θ = σ ⊙ M + A for a dense A (τ, or σ̃ + τ), differentiable.</summary>
    public Tensor Compose(Tensor shared, Tensor maskLogits, Tensor adaptive)
    {
        // A tensor '+' converts α = 1 to a Scalar nothing holds (see TensorOwnership); this runs at every training step.
        using var one = 1.ToScalar();
        return (shared * Mask(maskLogits)).add(adaptive, one);
    }

    /// <summary>The σ a stored task uses: its cohort's σ_c once frozen, else the live σ.</summary>
    public Tensor SharedOf(TaskSlot slot) => slot.FrozenOn is int c ? Frozen[c].Shared : Shared;

    /// <summary>The locally-shared σ̃_{g} a stored task's cluster has (its cohort's once frozen), or null.</summary>
    public SparseAdaptive? LocallySharedOf(TaskSlot slot)
        => slot.Group is int g && (slot.FrozenOn is int c ? Frozen[c].LocallyShared : LocallyShared).TryGetValue(g, out var local) ? local : null;

    /// <summary>The sparse adaptive part σ̃_{g(t)} + τ_t of a stored task, dense (caller's scope).</summary>
    public Tensor SparseAdaptivePart(string task)
    {
        var slot = Slots[task];
        var adaptive = slot.Adaptive.ToDense();
        // Scalars held for the call (see TensorOwnership): this runs once per task when scoring or consolidating.
        using var one = 1.ToScalar();
        return LocallySharedOf(slot) is { } local ? local.ToDense().add_(adaptive, one) : adaptive;
    }

    /// <summary>The full adaptive part σ̃_{g(t)} + τ_t + U_t V_tᵀ of a stored task, dense (caller's scope).</summary>
    public Tensor FullAdaptive(string task)
    {
        var sparse = SparseAdaptivePart(task);
        using var one = 1.ToScalar();
        return Slots[task].LowRank is { } lowRank ? sparse.add_(lowRank.ToDense(WeightShape), one) : sparse;
    }

    /// <summary>θ_t of a stored task (thresholded τ), dense, no autograd (caller's scope).</summary>
    public Tensor ComposeStored(string task)
    {
        using var noGrad = no_grad();
        var slot = Slots[task];
        return Compose(SharedOf(slot), slot.MaskLogits, FullAdaptive(task));
    }

    /// <summary>Replaces σ (disposing the old tensor).</summary>
    public void ReplaceShared(Tensor shared)
    {
        if (!ReferenceEquals(shared, Shared)) Shared.Dispose();
        Shared = shared;
    }

    /// <summary>Freezes the tasks that follow σ into cohort <paramref name="id"/>: they keep a handle on today's σ and
    /// take the live σ̃ with them (only they use it), so none of their θ changes. The next consolidation starts afresh.</summary>
    public void Freeze(int id)
    {
        if (Frozen.ContainsKey(id)) throw new InvalidOperationException($"Cohort {id} already exists.");
        Frozen[id] = new FrozenCohort(TensorOwnership.Share(Shared), new Dictionary<int, SparseAdaptive>(LocallyShared));
        LocallyShared.Clear();
        foreach (var slot in Slots.Values) slot.FrozenOn ??= id;
    }

    /// <summary>Removes a task's slot, and the σ̃ and cohort only it still used (nothing any other task reads changes).</summary>
    public void Remove(string task)
    {
        var slot = Slots[task];
        Slots.Remove(task);
        bool SameCohort(TaskSlot other) => other.FrozenOn == slot.FrozenOn;
        var locallyShared = slot.FrozenOn is int c ? Frozen[c].LocallyShared : LocallyShared;
        if (slot.Group is int g && !Slots.Values.Any(s => SameCohort(s) && s.Group == g) && locallyShared.Remove(g, out var local))
            local.Dispose();
        if (slot.FrozenOn is int cohort && !Slots.Values.Any(SameCohort) && Frozen.Remove(cohort, out var frozen))
            frozen.Dispose();
        slot.Dispose();
    }

    /// <summary>The same layer for another network: new handles on σ, every slot, σ̃ and cohort (nothing copied; see
    /// <see cref="TensorOwnership.Share"/>).</summary>
    public DecomposedLayer Share()
    {
        var copy = CreateSibling(TensorOwnership.Share(Shared));
        foreach (var (task, slot) in Slots) copy.Slots[task] = slot.Share();
        foreach (var (g, local) in LocallyShared) copy.LocallyShared[g] = local.Share();
        foreach (var (c, cohort) in Frozen) copy.Frozen[c] = cohort.Share();
        return copy;
    }

    public void Dispose()
    {
        Shared.Dispose();
        foreach (var slot in Slots.Values) slot.Dispose();
        foreach (var local in LocallyShared.Values) local.Dispose();
        foreach (var cohort in Frozen.Values) cohort.Dispose();
        Slots.Clear();
        LocallyShared.Clear();
        Frozen.Clear();
    }
}
