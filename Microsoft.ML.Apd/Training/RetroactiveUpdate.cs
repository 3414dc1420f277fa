using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// The retroactive part of the APD objective while task t trains: earlier tasks' τ_i follow σ so that, as σ moves,
/// each θ_i = σ ⊙ M_i + σ̃_{g(i)} + τ_i stays at its snapshot θ_i* taken when task t started:
/// Σ_{i&lt;t} (λ₂ ‖θ_i − θ_i*‖² + λ₁ ‖τ_i‖₁). <see cref="ExactRetroactiveUpdate"/> trains every τ_i densely with the
/// optimizer (the authors' algorithm, O(T·P) per step); <see cref="FastRetroactiveUpdate"/> keeps each τ_i at its
/// closed-form minimiser on its support (O(P) per step).
/// </summary>
internal interface IRetroactiveUpdate : IDisposable
{
    /// <summary>Earlier tasks' τ_i as trainable parameters (empty for the first task).</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>The retroactive term for the current σ of every layer as a differentiable expression (scalar,
    /// caller's scope): the reference <see cref="AddGradients"/> is checked against.</summary>
    Tensor Penalty(IReadOnlyList<Tensor> shared);

    /// <summary>Adds scale × the term's gradient to σ's (and to the earlier τ_i's) .grad.</summary>
    void AddGradients(IReadOnlyList<Parameter> shared, double scale);

    /// <summary>Called after each epoch with the current σ: lets the strategy update what it keeps between steps.
    /// Returns the number of earlier-τ elements that became active.</summary>
    long Refresh(IReadOnlyList<Tensor> shared);

    /// <summary>Stores the trained τ_i back into the network, hard-thresholded (|τ| ≤ λ₁ ⇒ 0) and sparse.</summary>
    void Commit(ApdNetwork network);
}

/// <summary>Creates the strategy chosen by <see cref="ApdHyperparameters.RetroactiveUpdate"/>.</summary>
internal static class RetroactiveUpdate
{
    public static IRetroactiveUpdate Create(ApdNetwork network, ApdHyperparameters hyperparameters) => hyperparameters.RetroactiveUpdate switch
    {
        RetroactiveUpdateMode.Exact => new ExactRetroactiveUpdate(network, hyperparameters),
        RetroactiveUpdateMode.Fast => new FastRetroactiveUpdate(network, hyperparameters),
        _ => throw new ArgumentOutOfRangeException(nameof(hyperparameters)),
    };
}

/// <summary>
/// Dense reference (the authors' algorithm). Per layer, the earlier tasks are stacked along a new first dimension so
/// the whole term is one batched expression per layer, whatever the number of tasks:
/// τ [T, ...] (one trainable parameter), M [T, out, 1..] (frozen), σ̃ [T, ...] (frozen, only if any task has one)
/// and θ* [T, ...]. Cost per step is O(T·P) elementwise, with no per-task C# loop.
/// </summary>
internal sealed class ExactRetroactiveUpdate : IRetroactiveUpdate
{
    private readonly string[] _tasks;
    private readonly double _lambda1, _lambda2, _threshold;
    private readonly bool _halfPrecision;
    private readonly List<Parameter> _adaptive = new();
    private readonly List<Tensor> _masks = new();
    private readonly List<Tensor?> _locallyShared = new();
    private readonly List<Tensor> _snapshot = new();

    public ExactRetroactiveUpdate(ApdNetwork network, ApdHyperparameters hyperparameters)
    {
        _tasks = network.FollowingTasks.ToArray();
        // The subgradient term keeps λ₁: the proximal part of the L1 is applied by the session's proximal steps,
        // which shrink these τ_i as they shrink τ_t.
        _lambda1 = hyperparameters.SparsityStrength;
        _lambda2 = hyperparameters.RetroactiveStrength;
        _threshold = hyperparameters.SparsityStrength;
        _halfPrecision = hyperparameters.HalfPrecisionStorage;
        if (_tasks.Length == 0) return;
        using var noGrad = no_grad();
        foreach (var layer in network.Layers)
        {
            using var scope = NewDisposeScope();
            var adaptive = stack(_tasks.Select(t => layer.Slots[t].Adaptive.ToDense()));
            var masks = stack(_tasks.Select(t => layer.Mask(layer.Slots[t].MaskLogits)));
            Tensor? locallyShared = null;
            if (layer.LocallyShared.Count > 0)
                locallyShared = stack(_tasks.Select(t => layer.Slots[t].Group is int g && layer.LocallyShared.TryGetValue(g, out var s)
                    ? s.ToDense() : zeros(layer.WeightShape, device: network.Device)));
            // θ_i* with exactly the expression Penalty uses, so the term is exactly 0 at the start of the task.
            var snapshot = Theta(layer.Shared, masks, locallyShared, adaptive);
            var parameter = new Parameter(adaptive, requires_grad: true);
            _adaptive.Add(parameter.DetachFromDisposeScope() as Parameter ?? parameter);
            _masks.Add(masks.DetachFromDisposeScope());
            _locallyShared.Add(locallyShared?.DetachFromDisposeScope());
            _snapshot.Add(snapshot.DetachFromDisposeScope());
        }
    }

    public IReadOnlyList<Parameter> Parameters => _adaptive;

    /// <summary>Every τ_i is dense and trained here: nothing to refresh.</summary>
    public long Refresh(IReadOnlyList<Tensor> shared) => 0;

    /// <summary>θ_i for all earlier tasks at once: σ ⊙ M_i + (σ̃_{g(i)} + τ_i).</summary>
    private static Tensor Theta(Tensor shared, Tensor masks, Tensor? locallyShared, Tensor adaptive)
        => shared.unsqueeze(0) * masks + (locallyShared is null ? adaptive : locallyShared + adaptive);

    /// <summary>By autograd, over the stacked tensors: this is the reference.</summary>
    public void AddGradients(IReadOnlyList<Parameter> shared, double scale)
    {
        if (_tasks.Length == 0) return;
        using var gradientScale = scale.ToScalar(); // held for the call (see TensorOwnership), as the task loss's
        Penalty(shared).mul(gradientScale).backward();
    }

    public Tensor Penalty(IReadOnlyList<Tensor> shared)
    {
        if (_tasks.Length == 0) return zeros(1, device: shared[0].device).sum();
        Tensor? total = null;
        for (int l = 0; l < shared.Count; l++)
        {
            var drift = Theta(shared[l], _masks[l], _locallyShared[l], _adaptive[l]) - _snapshot[l];
            var term = ApdObjective.Retroactive(drift, _lambda2) + ApdObjective.AdaptiveSparsity([_adaptive[l]], _lambda1);
            total = total is null ? term : total + term;
        }
        return total!;
    }

    /// <summary>The current drift ‖θ_i − θ_i*‖² per earlier task (summed over layers), for diagnostics and tests.</summary>
    public double[] Drift(IReadOnlyList<Tensor> shared)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var sum = zeros(_tasks.Length, dtype: ScalarType.Float64);
        for (int l = 0; l < shared.Count; l++)
        {
            var drift = Theta(shared[l], _masks[l], _locallyShared[l], _adaptive[l]) - _snapshot[l];
            sum += drift.square().flatten(1).sum(1).cpu().to(ScalarType.Float64);
        }
        return sum.data<double>().ToArray();
    }

    public void Commit(ApdNetwork network)
    {
        for (int l = 0; l < _adaptive.Count; l++)
        {
            var layer = network.Layers[l];
            for (int i = 0; i < _tasks.Length; i++)
            {
                using var scope = NewDisposeScope();
                layer.Slots[_tasks[i]].ReplaceAdaptive(SparseAdaptive.FromDense(_adaptive[l][i], _threshold, _halfPrecision));
            }
        }
    }

    public void Dispose()
    {
        foreach (var t in _adaptive) t.Dispose();
        foreach (var t in _masks) t.Dispose();
        foreach (var t in _locallyShared) t?.Dispose();
        foreach (var t in _snapshot) t.Dispose();
    }
}
