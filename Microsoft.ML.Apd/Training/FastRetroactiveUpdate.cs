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

    /// <summary>What one layer needs: σ*, A, the tasks' masks and support, and C with the constant part of the term.</summary>
    private sealed class LayerState : IDisposable
    {
        public required Tensor SharedAtStart;     // σ*, shaped like σ
        public required Tensor MaskSquareSum;     // A = Σ_i M_i², [out, 1, ...]
        public required Tensor MaskMatrix;        // M_i per earlier task, stacked [T, out]
        public required long Columns;             // elements per output unit (P / out)
        public required Support Support;
        public Tensor Coupling = null!;           // C = Σ_i M_i ⊙ Δτ_i, shaped like σ
        public double Constant;                   // λ₂ Σ_i ‖Δτ_i‖² + λ₁ Σ_i ‖τ_i‖₁

        public void Dispose()
        {
            SharedAtStart.Dispose();
            MaskSquareSum.Dispose();
            MaskMatrix.Dispose();
            Coupling?.Dispose();
            Support.Dispose();
        }
    }

    /// <summary>
    /// The supports S_i of all earlier tasks in one layer: flat positions, M_i of their row, τ_i* and τ_i there. Entries
    /// are ordered by task, then position (ascending), as each task's stored τ_i is: every operation over all tasks is
    /// one pass over these tensors, and a task's stored τ_i is a contiguous slice of them, already in order.
    /// </summary>
    private sealed class Support : IDisposable
    {
        public required Tensor Indices;           // flat positions in σ, int64 [n]
        public required Tensor MaskAt;            // M_i,row(e), [n]
        public required Tensor ValuesAtStart;     // τ_i,e*, [n] (0 for re-activated elements)
        public required Tensor Values;            // τ_i,e now, [n]
        public required long[] TaskOffsets;       // entries of task i are [TaskOffsets[i], TaskOffsets[i + 1])
        public Tensor? Batch;                     // which re-activation added the entry (0: on the support at the start), [n]; null while all are 0
        public int Batches = 1;

        public long Count => Indices.shape[0];

        /// <summary>One key per entry, task · size + position: ascending (caller's scope).</summary>
        public Tensor Keys(long size)
        {
            var counts = TaskOffsets.Zip(TaskOffsets.Skip(1), (a, b) => b - a).ToArray();
            var task = arange(counts.Length, dtype: ScalarType.Int64, device: Indices.device).repeat_interleave(tensor(counts, device: Indices.device));
            return task.mul_(size).add_(Indices);
        }

        public void Dispose()
        {
            Indices.Dispose();
            MaskAt.Dispose();
            ValuesAtStart.Dispose();
            Values.Dispose();
            Batch?.Dispose();
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
            // M_i flat over the output units, [T, out]: the support's elements look their row's mask up by index.
            var maskMatrix = stack(_tasks.Select(t => layer.Mask(layer.Slots[t].MaskLogits).flatten()));
            long columns = layer.WeightCount / layer.OutputCount;
            // Each stored τ_i's positions ascend (SparseAdaptive), so concatenated in task order they are ordered as
            // the support keeps them.
            var stored = _tasks.Select(t => layer.Slots[t].Adaptive).ToArray();
            var offsets = new long[stored.Length + 1];
            for (int i = 0; i < stored.Length; i++) offsets[i + 1] = offsets[i] + stored[i].NonZeros;
            var valuesAtStart = cat(stored.Select(a => a.Values).ToList(), 0);
            var support = new Support
            {
                Indices = cat(stored.Select(a => a.Indices).ToList(), 0),
                MaskAt = cat(stored.Select((a, i) => maskMatrix[i].index_select(0, a.Indices.div(columns, rounding_mode: RoundingMode.floor))).ToList(), 0),
                ValuesAtStart = valuesAtStart,
                Values = valuesAtStart.clone(),
                TaskOffsets = offsets,
            };
            var state = new LayerState
            {
                SharedAtStart = layer.Shared.detach().clone().DetachFromDisposeScope(),
                MaskSquareSum = maskMatrix.square().sum(dim: 0).reshape(layer.MaskShape).DetachFromDisposeScope(),
                MaskMatrix = maskMatrix.DetachFromDisposeScope(),
                Columns = columns,
                Support = Detached(support),
            };
            _layers.Add(state);
            // τ_i = τ_i* until the first refresh: the term starts at λ₁Σ‖τ_i*‖₁ with no drift, as the reference's does.
            Evaluate(state);
        }
    }

    private static Support Detached(Support support)
    {
        support.Indices.DetachFromDisposeScope();
        support.MaskAt.DetachFromDisposeScope();
        support.ValuesAtStart.DetachFromDisposeScope();
        support.Values.DetachFromDisposeScope();
        support.Batch?.DetachFromDisposeScope();
        return support;
    }

    /// <summary>The earlier τ_i are not trained by the optimizer: none.</summary>
    public IReadOnlyList<Parameter> Parameters => [];

    /// <summary>C and the constant part of the term from the current τ_i of one layer. The sums run over the entries
    /// one batch (start, then each re-activation) after the other, each batch in task order: float sums depend on their
    /// order, and this is the order of the supports' creation, so the results do not depend on how they are stored.</summary>
    private void Evaluate(LayerState state)
    {
        using var scope = NewDisposeScope();
        var support = state.Support;
        var coupling = zeros_like(state.SharedAtStart).reshape(-1);
        double constant = 0;
        for (int batch = 0; batch < support.Batches; batch++)
        {
            var inBatch = support.Batch is null ? null : support.Batch.eq(batch);
            Tensor Entries(Tensor t) => inBatch is null ? t : t.masked_select(inBatch);
            var values = Entries(support.Values);
            var adaptiveDrift = values - Entries(support.ValuesAtStart);                        // Δτ_i on S_i
            coupling.index_add_(0, Entries(support.Indices), Entries(support.MaskAt) * adaptiveDrift, 1);
            constant += _lambda2 * adaptiveDrift.square().sum().item<float>() + _lambda1 * values.abs().sum().item<float>();
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
            var support = state.Support;
            var u = support.ValuesAtStart - flatDrift.index_select(0, support.Indices) * support.MaskAt;
            support.Values.copy_(nn.functional.softshrink(u, _kappa));
            Evaluate(state);
        }
        return added;
    }

    private long Reactivate(LayerState state, Tensor flatDrift)
    {
        double bound = _threshold + _kappa;
        long rows = state.MaskMatrix.shape[1], columns = state.Columns, size = rows * columns;
        var drift = flatDrift.reshape(rows, columns);
        // |Δσ_e| M_i,row ≤ max_row |Δσ| · M_i,row (exactly, rounding included: M ≥ 0), so only the (task, row) pairs
        // where the row's largest drift times the mask passes the bound can gain elements; only their rows are tested
        // element by element, a bounded number of rows at a time.
        var pairs = (state.MaskMatrix * drift.abs().amax([1]).unsqueeze(0) > bound).nonzero();   // [Q, 2], by task, then row
        if (pairs.shape[0] == 0) return 0;
        var pairRows = pairs.select(1, 0).mul(rows).add_(pairs.select(1, 1));                     // task · rows + row
        var flatMasks = state.MaskMatrix.reshape(-1);
        long chunk = Math.Max(1, (1L << 22) / columns);
        var parts = new List<Tensor>();
        for (long start = 0; start < pairRows.shape[0]; start += chunk)
        {
            var taskRows = pairRows.narrow(0, start, Math.Min(chunk, pairRows.shape[0] - start));
            var rowDrift = drift.index_select(0, taskRows.remainder(rows));
            var active = (rowDrift * flatMasks.index_select(0, taskRows).unsqueeze(1)).abs() > bound;   // [q, columns]
            var at = active.nonzero();
            parts.Add(taskRows.index_select(0, at.select(1, 0)).mul_(columns).add_(at.select(1, 1)));   // task · size + position
        }
        var keys = cat(parts, 0);                                                                       // ascending
        // Elements already on the support stay as they are.
        var support = state.Support;
        var existing = support.Keys(size);
        var below = searchsorted(existing, keys);                                                     // existing keys < key
        if (support.Count > 0)
        {
            var isNew = existing.index_select(0, below.clamp_max(support.Count - 1)).ne(keys).logical_or_(below.eq(support.Count));
            keys = keys.masked_select(isNew);
            below = below.masked_select(isNew);
        }
        long added = keys.shape[0];
        if (added == 0) return 0;
        state.Support = Detached(Merge(support, keys, below, flatMasks.index_select(0, keys.div(columns, rounding_mode: RoundingMode.floor)), size));
        support.Dispose();
        return added;
    }

    /// <summary>The support with new elements (keys ascending, none on it yet; τ_i* = τ_i = 0 there) placed where their
    /// keys sort: the new element j goes to below[j] + j (below: the number of existing keys smaller than its key), the
    /// existing ones keep their order in the remaining places (caller's scope).</summary>
    private Support Merge(Support support, Tensor keys, Tensor below, Tensor maskAt, long size)
    {
        long count = support.Count + keys.shape[0];
        var device = keys.device;
        var newPlaces = below + arange(keys.shape[0], dtype: ScalarType.Int64, device: device);
        var isNew = zeros(count, dtype: ScalarType.Bool, device: device).index_fill_(0, newPlaces, true);
        var oldPlaces = isNew.logical_not().nonzero().reshape(-1);
        Tensor Place(Tensor old, Tensor added)
        {
            var merged = empty(count, dtype: old.dtype, device: device);
            merged.index_copy_(0, oldPlaces, old);
            merged.index_copy_(0, newPlaces, added);
            return merged;
        }
        var task = keys.div(size, rounding_mode: RoundingMode.floor);
        var perTask = bincount(task, minlength: _tasks.Length).cpu().data<long>().ToArray();
        var offsets = new long[_tasks.Length + 1];
        for (long i = 0, added = 0; i < _tasks.Length; i++) offsets[i + 1] = support.TaskOffsets[i + 1] + (added += perTask[i]);
        var zero = zeros(keys.shape[0], device: device);
        return new Support
        {
            Indices = Place(support.Indices, keys - task * size),
            MaskAt = Place(support.MaskAt, maskAt),
            ValuesAtStart = Place(support.ValuesAtStart, zero),
            Values = Place(support.Values, zero),
            TaskOffsets = offsets,
            Batch = Place(support.Batch ?? zeros(support.Count, dtype: ScalarType.Int32, device: device), full(keys.shape[0], support.Batches, dtype: ScalarType.Int32, device: device)),
            Batches = support.Batches + 1,
        };
    }

    /// <summary>Every earlier τ_i of one layer as it is now, dense, stacked [T, ...] (caller's scope; tests).</summary>
    public Tensor Adaptive(int layer)
    {
        var state = _layers[layer];
        long size = state.SharedAtStart.numel();
        var dense = zeros(_tasks.Length * size, device: state.SharedAtStart.device);
        dense.index_copy_(0, state.Support.Keys(size), state.Support.Values);
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
    /// <see cref="SparseAdaptive.FromDense"/>, in task order (owned by the caller). The support is ordered by task and
    /// position, so each task's kept entries are one slice, in the order <see cref="SparseAdaptive"/> stores them.</summary>
    private SparseAdaptive[] Stored(int layer, long[] shape)
    {
        using var scope = NewDisposeScope();
        var support = _layers[layer].Support;
        var device = support.Values.device;
        // Scalars held until the end (see TensorOwnership): these operations run over every earlier task's entries.
        using var threshold = _threshold.ToScalar();
        using var zero = 0.ToScalar();
        var values = _halfPrecision ? SparseAdaptive.RoundToHalf(support.Values) : support.Values;
        var keep = _threshold > 0 ? values.abs().gt(threshold) : values.ne(zero);
        // Kept entries per task: differences of the running count at the task boundaries.
        var running = cat([zeros(1, dtype: ScalarType.Int64, device: device), keep.cumsum(0, ScalarType.Int64)], 0);
        var boundaries = running.index_select(0, tensor(support.TaskOffsets, device: device)).cpu().data<long>().ToArray();
        var perTask = boundaries.Zip(boundaries.Skip(1), (a, b) => b - a).ToArray();
        var indexParts = support.Indices.masked_select(keep).split(perTask);
        var valueParts = values.masked_select(keep).split(perTask);
        return Enumerable.Range(0, _tasks.Length).Select(i => SparseAdaptive.FromParts(shape,
            indexParts[i].clone().DetachFromDisposeScope(), valueParts[i].clone().DetachFromDisposeScope())).ToArray();
    }

    /// <summary>Elements of the earlier τ_i's supports (all tasks, all layers), for tests and benchmarks.</summary>
    public long SupportElements => _layers.Sum(s => s.Support.Count);

    public void Dispose()
    {
        foreach (var state in _layers) state.Dispose();
    }
}
