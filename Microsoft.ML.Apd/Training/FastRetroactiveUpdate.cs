using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// The retroactive term at a cost per step that does not depend on the number of earlier tasks.
/// <para>
/// Per layer, with σ* and τ_i* the values when task t starts (M_i and σ̃_i are frozen, so they cancel), the drift is
/// θ_i − θ_i* = Δσ ⊙ M_i + Δτ_i, Δσ = σ − σ*, and (M_i broadcast over each output unit's row)
/// </para>
/// <code>
///   Σ_i ‖Δσ ⊙ M_i + Δτ_i‖² = ⟨Δσ², A⟩ + 2⟨Δσ, C⟩ + Σ_i ‖Δτ_i‖²,   A = Σ_i M_i²,  C = Σ_i M_i ⊙ Δτ_i
///   ∇_σ = 2λ₂ (Δσ ⊙ A + C)
/// </code>
/// <para>
/// A is one vector per layer for the whole task. C changes only when some τ_i changes, so Fast updates the earlier
/// τ_i in blocks rather than at every step: at each <see cref="Refresh"/> (after every epoch, and at
/// <see cref="Commit"/>) every τ_i jumps to the exact minimiser of its part of the term for the current σ,
/// </para>
/// <code>
///   τ_i = S_κ(τ_i* − Δσ ⊙ M_i),   κ = λ₁' / 2λ₂,   S_κ(u) = sign(u) · max(|u| − κ, 0)   (soft thresholding)
/// </code>
/// <para>
/// on its support S_i (its non-zeros when task t starts, plus re-activated elements; elsewhere τ_i stays 0). λ₁' is the
/// L1 strength on τ_i: λ₁, plus ρ / GradientScale when proximal shrinking is on (see
/// <see cref="ApdHyperparameters.ProximalStrength"/>; the dense reference applies that share as proximal steps). Between
/// refreshes a step costs O(P) whatever the number of tasks (A, C and the constant Σ‖Δτ_i‖² + λ₁Σ‖τ_i‖₁ are kept),
/// a refresh O(Σ nnz), and the earlier τ_i have no optimizer state. The dense reference trains the same τ_i with Adam
/// at every step instead; both minimise the same objective, and with the same τ_i the two terms and their σ-gradients
/// are equal.
/// </para>
/// <para>
/// Re-activation: off its support, τ_i,e = 0 while the minimiser would be S_κ(−Δσ_e M_i), which survives the storage
/// threshold (|τ| &gt; λ₁) only when |Δσ_e M_i| &gt; λ₁ + κ. <see cref="Refresh"/> adds exactly those elements to S_i,
/// so τ_i follows σ where the dense reference would keep a non-zero, and nowhere else.
/// </para>
/// </summary>
internal sealed class FastRetroactiveUpdate : IRetroactiveUpdate
{
    private readonly string[] _tasks;
    private readonly double _lambda1, _lambda2, _kappa, _threshold;
    private readonly bool _halfPrecision;
    private readonly List<LayerState> _layers = new();

    /// <summary>What one layer needs: σ*, A, the tasks' masks and supports, and C with the constant part of the term.</summary>
    private sealed class LayerState : IDisposable
    {
        public required Tensor SharedAtStart;     // σ*, shaped like σ
        public required Tensor MaskSquareSum;     // A = Σ_i M_i², [out, 1, ...]
        public required Tensor[] Masks;           // M_i per earlier task, [out]
        public required Tensor MaskMatrix;        // the same stacked, [T, out]
        public required long Columns;             // elements per output unit (P / out)
        public List<Support> Supports { get; } = new();
        public Tensor Coupling = null!;           // C = Σ_i M_i ⊙ Δτ_i, shaped like σ
        public double Constant;                   // λ₂ Σ_i ‖Δτ_i‖² + λ₁ Σ_i ‖τ_i‖₁

        public void Dispose()
        {
            SharedAtStart.Dispose();
            MaskSquareSum.Dispose();
            MaskMatrix.Dispose();
            Coupling?.Dispose();
            foreach (var m in Masks) m.Dispose();
            foreach (var s in Supports) s.Dispose();
        }
    }

    /// <summary>Some elements of the supports of all earlier tasks: flat positions, M_i of their row, τ_i* and τ_i there.</summary>
    private sealed class Support : IDisposable
    {
        public required Tensor Indices;           // flat positions in σ, int64 [n]
        public required Tensor MaskAt;            // M_i,row(e), [n]
        public required Tensor ValuesAtStart;     // τ_i,e*, [n] (0 for re-activated elements)
        public required Tensor Values;            // τ_i,e now, [n]
        public required long[] TaskOffsets;       // entries of task i are [TaskOffsets[i], TaskOffsets[i + 1])

        public void Dispose()
        {
            Indices.Dispose();
            MaskAt.Dispose();
            ValuesAtStart.Dispose();
            Values.Dispose();
        }
    }

    public FastRetroactiveUpdate(ApdNetwork network, ApdHyperparameters hyperparameters)
    {
        _tasks = network.Tasks.ToArray();
        // The L1 on the earlier τ_i includes the proximal shrinking's share, ρ / GradientScale: Exact's τ_i are
        // shrunk by the session's proximal steps; here the closed form minimises the same L1.
        _lambda1 = hyperparameters.RetroactiveSparsityStrength;
        _lambda2 = hyperparameters.RetroactiveStrength;
        _threshold = hyperparameters.SparsityStrength;
        _halfPrecision = hyperparameters.HalfPrecisionStorage;
        // λ₂ = 0: nothing ties θ_i to θ_i*, and λ₁‖τ_i‖₁ alone is minimised by τ_i = 0 (κ = ∞, as large as float32 allows).
        _kappa = _lambda2 > 0 ? _lambda1 / (2 * _lambda2) : float.MaxValue;
        if (_tasks.Length == 0) return;
        using var noGrad = no_grad();
        foreach (var layer in network.Layers)
        {
            using var scope = NewDisposeScope();
            // M_i flat over the output units [out]: the support's elements look their row's mask up by index.
            var masks = _tasks.Select(t => layer.Mask(layer.Slots[t].MaskLogits).flatten()).ToArray();
            var maskMatrix = stack(masks);
            var state = new LayerState
            {
                SharedAtStart = layer.Shared.detach().clone(),
                MaskSquareSum = maskMatrix.square().sum(dim: 0).reshape(layer.MaskShape),
                Masks = masks,
                MaskMatrix = maskMatrix,
                Columns = layer.WeightCount / layer.OutputCount,
            };
            AddSupport(state, _tasks.Select(t => (layer.Slots[t].Adaptive.Indices, layer.Slots[t].Adaptive.Values)).ToArray());
            state.SharedAtStart.DetachFromDisposeScope();
            state.MaskSquareSum.DetachFromDisposeScope();
            state.MaskMatrix.DetachFromDisposeScope();
            foreach (var m in masks) m.DetachFromDisposeScope();
            _layers.Add(state);
            // τ_i = τ_i* until the first refresh: the term starts at λ₁Σ‖τ_i*‖₁ with no drift, as the reference's does.
            Evaluate(state);
        }
    }

    /// <summary>The earlier τ_i are not trained by the optimizer: none.</summary>
    public IReadOnlyList<Parameter> Parameters => [];

    /// <summary>Adds (indices, start values) of every task to the layer's supports, with τ_i = τ_i* there.</summary>
    private static void AddSupport(LayerState state, (Tensor Indices, Tensor Values)[] perTask)
    {
        var offsets = new long[perTask.Length + 1];
        for (int i = 0; i < perTask.Length; i++) offsets[i + 1] = offsets[i] + perTask[i].Indices.shape[0];
        var valuesAtStart = cat(perTask.Select(p => p.Values).ToList(), 0);
        state.Supports.Add(new Support
        {
            Indices = cat(perTask.Select(p => p.Indices).ToList(), 0).DetachFromDisposeScope(),
            MaskAt = cat(perTask.Select((p, i) => state.Masks[i].index_select(0, p.Indices.div(state.Columns, rounding_mode: RoundingMode.floor))).ToList(), 0).DetachFromDisposeScope(),
            ValuesAtStart = valuesAtStart.DetachFromDisposeScope(),
            Values = valuesAtStart.clone().DetachFromDisposeScope(),
            TaskOffsets = offsets,
        });
    }

    /// <summary>C and the constant part of the term from the current τ_i of one layer.</summary>
    private void Evaluate(LayerState state)
    {
        using var scope = NewDisposeScope();
        var coupling = zeros_like(state.SharedAtStart).reshape(-1);
        double constant = 0;
        foreach (var support in state.Supports)
        {
            var adaptiveDrift = support.Values - support.ValuesAtStart;                       // Δτ_i on S_i
            coupling.index_add_(0, support.Indices, support.MaskAt * adaptiveDrift, 1);
            constant += _lambda2 * adaptiveDrift.square().sum().item<float>() + _lambda1 * support.Values.abs().sum().item<float>();
        }
        state.Coupling?.Dispose();
        state.Coupling = coupling.reshape(state.SharedAtStart.shape).DetachFromDisposeScope();
        state.Constant = constant;
    }

    /// <summary>Adds scale · 2λ₂(Δσ ⊙ A + C) to each σ's gradient: two elementwise passes over σ per layer.</summary>
    public void AddGradients(IReadOnlyList<Parameter> shared, double scale)
    {
        using var noGrad = no_grad();
        for (int l = 0; l < _layers.Count; l++)
        {
            using var scope = NewDisposeScope();
            var state = _layers[l];
            var gradient = shared[l].grad!;
            gradient.addcmul_(shared[l] - state.SharedAtStart, state.MaskSquareSum, 2 * _lambda2 * scale);   // Δσ ⊙ A
            gradient.add_(state.Coupling, 2 * _lambda2 * scale);                                              // C
        }
    }

    /// <summary>The term, λ₂(⟨Δσ², A⟩ + 2⟨Δσ, C⟩ + Σ‖Δτ_i‖²) + λ₁Σ‖τ_i‖₁, as a differentiable expression of σ
    /// (the reference objective and tests).</summary>
    public Tensor Penalty(IReadOnlyList<Tensor> shared)
    {
        var total = zeros(1, device: shared[0].device).sum();
        for (int l = 0; l < _layers.Count; l++)
        {
            var state = _layers[l];
            var drift = shared[l] - state.SharedAtStart;
            total += _lambda2 * ((drift.square() * state.MaskSquareSum).sum() + 2 * (drift * state.Coupling).sum()) + state.Constant;
        }
        return total;
    }

    /// <summary>
    /// Adds, per layer and task, the elements outside S_i where |Δσ_e M_i,row(e)| &gt; λ₁ + κ to S_i, then moves every
    /// τ_i to its minimiser S_κ(τ_i* − Δσ ⊙ M_i) for the current σ. Returns the number of elements added.
    /// </summary>
    public long Refresh(IReadOnlyList<Tensor> shared)
    {
        long added = 0;
        using var noGrad = no_grad();
        for (int l = 0; l < _layers.Count; l++)
        {
            using var scope = NewDisposeScope();
            var state = _layers[l];
            var flatDrift = (shared[l].detach() - state.SharedAtStart).reshape(-1);
            if (_lambda2 > 0) added += Reactivate(state, flatDrift);
            foreach (var support in state.Supports)
            {
                var u = support.ValuesAtStart - flatDrift.index_select(0, support.Indices) * support.MaskAt;
                support.Values.copy_(nn.functional.softshrink(u, _kappa));
            }
            Evaluate(state);
        }
        return added;
    }

    private long Reactivate(LayerState state, Tensor flatDrift)
    {
        double bound = _threshold + _kappa;
        var perTask = new (Tensor Indices, Tensor Values)[_tasks.Length];
        long count = 0;
        // |Δσ_e| M_i,row ≤ max_row |Δσ| · M_i,row (exactly, rounding included: M ≥ 0), so only tasks with a row where
        // the largest drift times the mask passes the bound can gain elements: one [T, out] test instead of T dense
        // passes over σ.
        var rowDrift = flatDrift.abs().reshape(state.Masks[0].shape[0], state.Columns).amax([1]);
        var candidates = (state.MaskMatrix * rowDrift.unsqueeze(0) > bound).any(1).cpu().data<bool>().ToArray();
        for (int i = 0; i < _tasks.Length; i++)
        {
            if (!candidates[i])
            {
                perTask[i] = (empty(0, dtype: ScalarType.Int64, device: flatDrift.device), empty(0, device: flatDrift.device));
                continue;
            }
            var active = (flatDrift * state.Masks[i].repeat_interleave(state.Columns)).abs() > bound;
            foreach (var support in state.Supports)
                active.index_fill_(0, TaskEntries(support, support.Indices, i), false);
            var indices = active.nonzero().reshape(-1);
            perTask[i] = (indices, zeros(indices.shape[0], device: flatDrift.device));
            count += indices.shape[0];
        }
        if (count > 0) AddSupport(state, perTask);
        return count;
    }

    private static Tensor TaskEntries(Support support, Tensor values, int task)
        => values.narrow(0, support.TaskOffsets[task], support.TaskOffsets[task + 1] - support.TaskOffsets[task]);

    /// <summary>Every earlier τ_i of one layer as it is now, dense, stacked [T, ...] (caller's scope; tests).</summary>
    public Tensor Adaptive(int layer)
    {
        var state = _layers[layer];
        var dense = zeros([_tasks.Length, state.SharedAtStart.numel()], device: state.SharedAtStart.device);
        foreach (var support in state.Supports)
            for (int i = 0; i < _tasks.Length; i++)
                dense[i].index_copy_(0, TaskEntries(support, support.Indices, i), TaskEntries(support, support.Values, i));
        return dense.reshape([_tasks.Length, .. state.SharedAtStart.shape]);
    }

    /// <summary>A last <see cref="Refresh"/> for the network's new σ, then each τ_i written back hard-thresholded
    /// (|τ| ≤ λ₁ ⇒ 0) and sparse, as <see cref="SparseAdaptive.FromDense"/> would store it, straight from the supports:
    /// O(Σ nnz), never a dense tensor per task.</summary>
    public void Commit(ApdNetwork network)
    {
        Refresh(network.Layers.Select(l => l.Shared).ToList());
        using var noGrad = no_grad();
        for (int l = 0; l < _layers.Count; l++)
        {
            var layer = network.Layers[l];
            var stored = Stored(l, layer.WeightShape);
            for (int i = 0; i < _tasks.Length; i++)
                layer.Slots[_tasks[i]].ReplaceAdaptive(stored[i]);
        }
    }

    /// <summary>Every earlier τ_i of one layer, rounded (half-precision storage) and hard-thresholded like
    /// <see cref="SparseAdaptive.FromDense"/>, in task order (owned by the caller).</summary>
    private SparseAdaptive[] Stored(int layer, long[] shape)
    {
        using var scope = NewDisposeScope();
        var state = _layers[layer];
        long size = state.SharedAtStart.numel();
        var device = state.SharedAtStart.device;
        // Scalars held until the end (see TensorOwnership): these operations run over every earlier task's entries.
        using var sizeScalar = size.ToScalar();
        using var threshold = _threshold.ToScalar();
        using var zero = 0.ToScalar();
        // One key per entry, task · size + position: sorted, the entries group by task with positions ascending (a
        // task's entries come from several supports once elements were re-activated).
        var keys = cat(state.Supports.Select(s =>
        {
            var counts = tensor(s.TaskOffsets.Zip(s.TaskOffsets.Skip(1), (a, b) => b - a).ToArray(), device: device);
            return s.Indices + arange(_tasks.Length, dtype: ScalarType.Int64, device: device).repeat_interleave(counts).mul(sizeScalar);
        }).ToList(), 0);
        var values = cat(state.Supports.Select(s => s.Values).ToList(), 0);
        if (_halfPrecision) values = SparseAdaptive.RoundToHalf(values);
        var keep = _threshold > 0 ? values.abs().gt(threshold) : values.ne(zero);
        keys = keys.masked_select(keep);
        values = values.masked_select(keep);
        var order = keys.argsort();
        keys = keys.index_select(0, order);
        values = values.index_select(0, order);
        var task = keys.div(sizeScalar, rounding_mode: RoundingMode.floor);
        var positions = keys - task.mul(sizeScalar);
        var perTask = bincount(task, minlength: _tasks.Length).cpu().data<long>().ToArray();
        var indexParts = positions.split(perTask);
        var valueParts = values.split(perTask);
        return Enumerable.Range(0, _tasks.Length).Select(i => SparseAdaptive.FromParts(shape,
            indexParts[i].clone().DetachFromDisposeScope(), valueParts[i].clone().DetachFromDisposeScope())).ToArray();
    }

    /// <summary>Elements of the earlier τ_i's supports (all tasks, all layers), for tests and benchmarks.</summary>
    public long SupportElements => _layers.Sum(s => s.Supports.Sum(c => c.Indices.shape[0]));

    public void Dispose()
    {
        foreach (var state in _layers) state.Dispose();
    }
}
