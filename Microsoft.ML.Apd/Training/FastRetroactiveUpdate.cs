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
    /// <summary>Entries per block of the supports (<see cref="Support"/>): 8 MB of positions. Every pass over the
    /// supports allocates its result; results of at most this size are recycled by the C allocator (glibc keeps blocks
    /// up to 32 MB in its heap), while one tensor over every earlier task's entries — hundreds of MB at a few hundred
    /// tasks — is fresh memory from the system each time, and its page faults cost far more than the arithmetic (one
    /// tensor per pass: 5 s per Fit at 300 tasks, 0.16 s with glibc told to keep freed memory; docs/benchmarks.md).</summary>
    internal const long BlockEntries = 1L << 20;

    private readonly string[] _tasks;
    private readonly double _lambda1, _lambda2, _kappa, _threshold;
    private readonly bool _halfPrecision;
    private readonly List<LayerState> _layers = new();

    /// <summary>What one layer needs: σ*, A, the tasks' masks and supports, and C with the constant part of the term.</summary>
    private sealed class LayerState : IDisposable
    {
        public required Tensor SharedAtStart;     // σ*, shaped like σ
        public required Tensor MaskSquareSum;     // A = Σ_i M_i², [out, 1, ...]
        public required Tensor MaskMatrix;        // M_i per earlier task, stacked [T, out]
        public required long Columns;             // elements per output unit (P / out)
        public required Support[] Blocks;         // the supports of consecutive runs of tasks, in task order
        public int Batches = 1;                   // 1 + the re-activations that added elements to this layer
        public Tensor Coupling = null!;           // C = Σ_i M_i ⊙ Δτ_i, shaped like σ
        public double Constant;                   // λ₂ Σ_i ‖Δτ_i‖² + λ₁ Σ_i ‖τ_i‖₁

        public void Dispose()
        {
            SharedAtStart.Dispose();
            MaskSquareSum.Dispose();
            MaskMatrix.Dispose();
            Coupling?.Dispose();
            foreach (var block in Blocks) block.Dispose();
        }
    }

    /// <summary>
    /// The supports S_i of a run of consecutive earlier tasks in one layer (about <see cref="BlockEntries"/> entries;
    /// a larger task alone): flat positions, M_i of their row, τ_i* and τ_i there. Entries are ordered by task, then
    /// position (ascending), as each task's stored τ_i is: every operation over the block's tasks is one pass over these
    /// tensors, and a task's stored τ_i is a contiguous slice of them, already in order.
    /// </summary>
    private sealed class Support : IDisposable
    {
        public required int FirstTask;            // the block's tasks are FirstTask, FirstTask + 1, … (of all earlier tasks)
        public required Tensor Indices;           // flat positions in σ, int64 [n]
        public required Tensor MaskAt;            // M_i,row(e), [n]
        public required Tensor ValuesAtStart;     // τ_i,e*, [n] (0 for re-activated elements)
        public required Tensor Values;            // τ_i,e now, [n]
        public required long[] TaskOffsets;       // entries of the block's task i are [TaskOffsets[i], TaskOffsets[i + 1])
        public Tensor? Batch;                     // which re-activation added the entry (0: on the support at the start), [n]; null while all are 0

        public long Count => Indices.shape[0];
        public int TaskCount => TaskOffsets.Length - 1;

        /// <summary>One key per entry, task · size + position, the task numbered within the block: ascending (caller's scope).</summary>
        public Tensor Keys(long size)
        {
            var counts = TaskOffsets.Zip(TaskOffsets.Skip(1), (a, b) => b - a).ToArray();
            var task = arange(counts.Length, dtype: ScalarType.Int64, device: Indices.device).repeat_interleave(tensor(counts, device: Indices.device));
            return task.mul_(size).add_(Indices);
        }

        public Support Detached()
        {
            Indices.DetachFromDisposeScope();
            MaskAt.DetachFromDisposeScope();
            ValuesAtStart.DetachFromDisposeScope();
            Values.DetachFromDisposeScope();
            Batch?.DetachFromDisposeScope();
            return this;
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

    /// <param name="network">The network whose earlier tasks' τ_i follow σ.</param>
    /// <param name="hyperparameters">λ₁, λ₂ and the storage options.</param>
    /// <param name="blockEntries">Entries per block (<see cref="BlockEntries"/>; tests use others: the results do not depend on it).</param>
    public FastRetroactiveUpdate(ApdNetwork network, ApdHyperparameters hyperparameters, long blockEntries = BlockEntries)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockEntries, 1);
        _tasks = network.FollowingTasks.ToArray();
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
            // The output unit (row) of every flat position, to look the supports' masks up by: one gather per task
            // instead of an integer division per entry, which costs more.
            var rowOf = arange(layer.OutputCount, dtype: ScalarType.Int64, device: maskMatrix.device).repeat_interleave(columns);
            var stored = _tasks.Select(t => layer.Slots[t].Adaptive).ToArray();
            var blocks = Blocks(stored, blockEntries).Select(range => Block(stored, range, maskMatrix, rowOf)).ToList();
            var state = new LayerState
            {
                SharedAtStart = layer.Shared.detach().clone().DetachFromDisposeScope(),
                MaskSquareSum = maskMatrix.square().sum(dim: 0).reshape(layer.MaskShape).DetachFromDisposeScope(),
                MaskMatrix = maskMatrix.DetachFromDisposeScope(),
                Columns = columns,
                Blocks = blocks.ToArray(),
            };
            _layers.Add(state);
            // τ_i = τ_i* until the first refresh: the term starts at λ₁Σ‖τ_i*‖₁ with no drift (C = 0), as the
            // reference's does; what Evaluate would compute, without its passes over a drift that is exactly 0.
            state.Coupling = zeros_like(state.SharedAtStart).DetachFromDisposeScope();
            state.Constant = _lambda1 * blocks.Sum(block => (double)block.ValuesAtStart.abs().sum().item<float>());
        }
    }

    /// <summary>
    /// The tasks [First, End) of each block, in order, and whether their stored τ_i lie side by side in one tensor
    /// (<see cref="FollowsInStorage"/>): runs of consecutive tasks of about <paramref name="blockEntries"/> entries, as
    /// far as possible runs in one tensor.
    /// <see cref="Commit"/> stores each block's τ_i that way, so from one <c>Fit</c> to the next the blocks come back
    /// whole and <see cref="Block"/> takes them as they are, without copying: only the tasks written since (the last
    /// task trained; every task after a consolidation or a load) are copied into new blocks. A block that already lies in
    /// one tensor is not merged with its neighbours unless it is small (under half a block).
    /// </summary>
    internal static IEnumerable<(int First, int End, bool InOneTensor)> Blocks(IReadOnlyList<SparseAdaptive> stored, long blockEntries)
    {
        for (int first = 0, end; first < stored.Count; first = end)
        {
            long entries = stored[first].NonZeros;
            bool inOneTensor = true;
            for (end = first + 1; end < stored.Count && entries + stored[end].NonZeros <= blockEntries; end++)
            {
                bool follows = FollowsInStorage(stored[end - 1], stored[end]);
                if (!follows && inOneTensor && end - first > 1 && entries >= blockEntries / 2) break;
                inOneTensor &= follows;
                entries += stored[end].NonZeros;
            }
            yield return (first, end, inOneTensor);
        }
    }

    /// <summary>Whether <paramref name="next"/>'s positions and values continue <paramref name="previous"/>'s in the same
    /// tensors (both views on one tensor, one after the other), so that a run of such τ_i is one view.</summary>
    internal static bool FollowsInStorage(SparseAdaptive previous, SparseAdaptive next)
    {
        // A storage is identified by where its data starts (the pointer is not offset by the view's start).
        static bool Follows<T>(Tensor a, Tensor b) where T : unmanaged => a.storage_offset() + a.numel() == b.storage_offset()
            && a.storage<T>().data_ptr() == b.storage<T>().data_ptr();
        return Follows<long>(previous.Indices, next.Indices) && Follows<float>(previous.Values, next.Values);
    }

    /// <summary>The support of tasks [first, end) at the start: their stored τ_i. Each stored τ_i's positions ascend
    /// (SparseAdaptive), so concatenated in task order they are ordered as the support keeps them. When the τ_i lie
    /// side by side in one tensor (<see cref="Blocks"/>), positions and values are a view on it, not a copy.</summary>
    private static Support Block(SparseAdaptive[] stored, (int First, int End, bool InOneTensor) range, Tensor maskMatrix, Tensor rowOf)
    {
        using var scope = NewDisposeScope();
        int first = range.First;
        var tasks = Enumerable.Range(first, range.End - first).ToArray();
        var offsets = new long[tasks.Length + 1];
        for (int i = 0; i < tasks.Length; i++) offsets[i + 1] = offsets[i] + stored[tasks[i]].NonZeros;
        // Stored tensors are immutable, so a view on them is as good as a copy.
        Tensor Joined(Func<SparseAdaptive, Tensor> part) => range.InOneTensor
            ? part(stored[first]).as_strided([offsets[^1]], [1], part(stored[first]).storage_offset())
            : cat(tasks.Select(i => part(stored[i])).ToList(), 0);
        var valuesAtStart = Joined(s => s.Values);
        return new Support
        {
            FirstTask = first,
            Indices = Joined(s => s.Indices),
            MaskAt = cat(tasks.Select(i => maskMatrix[i].index_select(0, rowOf.index_select(0, stored[i].Indices))).ToList(), 0),
            ValuesAtStart = valuesAtStart,
            Values = valuesAtStart.alias(),   // a second handle: τ_i = τ_i* until the first refresh replaces it
            TaskOffsets = offsets,
        }.Detached();
    }

    /// <summary>The earlier τ_i are not trained by the optimizer: none.</summary>
    public IReadOnlyList<Parameter> Parameters => [];

    /// <summary>C and the constant part of the term from the current τ_i of one layer. The sums run over the entries
    /// one batch (start, then each re-activation) after the other, each batch in task order: float sums depend on their
    /// order, and this is the order of the supports' creation, so the results do not depend on how they are stored.</summary>
    private void Evaluate(LayerState state)
    {
        using var scope = NewDisposeScope();
        var coupling = zeros_like(state.SharedAtStart).reshape(-1);
        double constant = 0;
        for (int batch = 0; batch < state.Batches; batch++)
            foreach (var support in state.Blocks)
            {
                using var blockScope = NewDisposeScope();
                if (support.Batch is null && batch > 0) continue;
                var inBatch = support.Batch?.eq(batch);
                Tensor Entries(Tensor t) => inBatch is null ? t : t.masked_select(inBatch);
                var values = Entries(support.Values);
                var adaptiveDrift = values - Entries(support.ValuesAtStart);                        // Δτ_i on S_i
                var product = Entries(support.MaskAt) * adaptiveDrift;
                coupling.index_add_(0, Entries(support.Indices), product, 1);
                // In place from here: a pass that allocates costs more than its arithmetic (see BlockEntries).
                constant += _lambda2 * adaptiveDrift.pow_(2).sum().item<float>() + _lambda1 * product.copy_(values).abs_().sum().item<float>();
            }
        state.Coupling?.Dispose();
        state.Coupling = coupling.reshape(state.SharedAtStart.shape).DetachFromDisposeScope();
        state.Constant = constant;
    }

    /// <summary>Adds scale · 2λ₂(Δσ ⊙ A + C) to each σ's gradient: two elementwise passes over σ per layer.</summary>
    public void AddGradients(IReadOnlyList<Parameter> shared, double scale)
    {
        using var noGrad = no_grad();
        using var weight = (2 * _lambda2 * scale).ToScalar(); // held for the calls (see TensorOwnership): every step
        for (int l = 0; l < _layers.Count; l++)
        {
            using var scope = NewDisposeScope();
            var state = _layers[l];
            var gradient = shared[l].grad!;
            gradient.addcmul_(shared[l] - state.SharedAtStart, state.MaskSquareSum, weight);   // Δσ ⊙ A
            gradient.add_(state.Coupling, weight);                                              // C
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
            added += Move(_layers[l], shared[l]);
            Evaluate(_layers[l]);
        }
        return added;
    }

    /// <summary><see cref="Refresh"/> of one layer without <see cref="Evaluate"/>: re-activation, then τ_i on S_i.</summary>
    private long Move(LayerState state, Tensor shared)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var flatDrift = (shared.detach() - state.SharedAtStart).reshape(-1);
        long added = 0;
        for (int b = 0; b < state.Blocks.Length; b++)
        {
            using var blockScope = NewDisposeScope();
            if (_lambda2 > 0) added += Reactivate(state, b, flatDrift);
            var support = state.Blocks[b];
            // τ_i* − Δσ ⊙ M_i with one allocation: −(Δσ M_i) + τ_i* is the same float operation as τ_i* − Δσ M_i.
            var u = flatDrift.index_select(0, support.Indices).mul_(support.MaskAt).neg_().add_(support.ValuesAtStart);
            var values = nn.functional.softshrink(u, _kappa).DetachFromDisposeScope();
            support.Values.Dispose();
            support.Values = values;
        }
        // The elements added now form the next batch of every block that gained some (see Evaluate).
        if (added > 0) state.Batches++;
        return added;
    }

    /// <summary>Adds the elements of block <paramref name="b"/>'s tasks that re-activate for the drift (see the class
    /// remarks), tagged with the layer's next batch; returns their number.</summary>
    private long Reactivate(LayerState state, int b, Tensor flatDrift)
    {
        var support = state.Blocks[b];
        double bound = _threshold + _kappa;
        long rows = state.MaskMatrix.shape[1], columns = state.Columns, size = rows * columns;
        var drift = flatDrift.reshape(rows, columns);
        var masks = state.MaskMatrix.narrow(0, support.FirstTask, support.TaskCount);   // [block's tasks, out]
        // |Δσ_e| M_i,row ≤ max_row |Δσ| · M_i,row (exactly, rounding included: M ≥ 0), so only the (task, row) pairs
        // where the row's largest drift times the mask passes the bound can gain elements; only their rows are tested
        // element by element, a bounded number of rows at a time.
        var pairs = (masks * drift.abs().amax([1]).unsqueeze(0) > bound).nonzero();   // [Q, 2], by task, then row
        if (pairs.shape[0] == 0) return 0;
        var pairRows = pairs.select(1, 0).mul(rows).add_(pairs.select(1, 1));         // task · rows + row
        var flatMasks = masks.reshape(-1);
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
        state.Blocks[b] = Merge(support, keys, below, flatMasks.index_select(0, keys.div(columns, rounding_mode: RoundingMode.floor)), size, state.Batches).Detached();
        support.Dispose();
        return added;
    }

    /// <summary>The block with new elements (keys ascending, none on it yet; τ_i* = τ_i = 0 there; tagged
    /// <paramref name="batch"/>) placed where their keys sort: the new element j goes to below[j] + j (below: the number
    /// of existing keys smaller than its key), the existing ones keep their order in the remaining places (caller's scope).</summary>
    private static Support Merge(Support support, Tensor keys, Tensor below, Tensor maskAt, long size, int batch)
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
        int tasks = support.TaskCount;
        var perTask = bincount(task, minlength: tasks).cpu().data<long>().ToArray();
        var offsets = new long[tasks + 1];
        for (long i = 0, added = 0; i < tasks; i++) offsets[i + 1] = support.TaskOffsets[i + 1] + (added += perTask[i]);
        var zero = zeros(keys.shape[0], device: device);
        return new Support
        {
            FirstTask = support.FirstTask,
            Indices = Place(support.Indices, keys - task * size),
            MaskAt = Place(support.MaskAt, maskAt),
            ValuesAtStart = Place(support.ValuesAtStart, zero),
            Values = Place(support.Values, zero),
            TaskOffsets = offsets,
            Batch = Place(support.Batch ?? zeros(support.Count, dtype: ScalarType.Int32, device: device), full(keys.shape[0], batch, dtype: ScalarType.Int32, device: device)),
        };
    }

    /// <summary>Every earlier τ_i of one layer as it is now, dense, stacked [T, ...] (caller's scope; tests).</summary>
    public Tensor Adaptive(int layer)
    {
        var state = _layers[layer];
        long size = state.SharedAtStart.numel();
        var dense = zeros(_tasks.Length * size, device: state.SharedAtStart.device);
        foreach (var support in state.Blocks)
            dense.index_copy_(0, support.Keys(size).add_(support.FirstTask * size), support.Values);
        return dense.reshape([_tasks.Length, .. state.SharedAtStart.shape]);
    }

    /// <summary>A last refresh of every τ_i for the network's new σ (C and the constant are not needed any more), then
    /// each τ_i written back hard-thresholded (|τ| ≤ λ₁ ⇒ 0) and sparse, as <see cref="SparseAdaptive.FromDense"/>
    /// would store it, straight from the supports: O(Σ nnz), never a dense tensor per task.</summary>
    public void Commit(ApdNetwork network)
    {
        using var noGrad = no_grad();
        for (int l = 0; l < _layers.Count; l++)
        {
            var layer = network.Layers[l];
            Move(_layers[l], layer.Shared);
            foreach (var support in _layers[l].Blocks)
            {
                var stored = Stored(support, layer.WeightShape);
                for (int i = 0; i < stored.Length; i++)
                    layer.Slots[_tasks[support.FirstTask + i]].ReplaceAdaptive(stored[i]);
            }
        }
    }

    /// <summary>The τ_i of one block's tasks, rounded (half-precision storage) and hard-thresholded like
    /// <see cref="SparseAdaptive.FromDense"/>, in task order (owned by the caller). The block is ordered by task and
    /// position, so each task's kept entries are one slice, in the order <see cref="SparseAdaptive"/> stores them: the
    /// tasks' τ_i are views on one tensor of positions and one of values (immutable like every stored tensor; their
    /// storage is freed with the last of them), so the write-back makes two tensors per block, not two per task.</summary>
    private SparseAdaptive[] Stored(Support support, long[] shape)
    {
        using var scope = NewDisposeScope();
        // Scalars held until the end (see TensorOwnership).
        using var threshold = _threshold.ToScalar();
        using var zero = 0.ToScalar();
        var values = _halfPrecision ? SparseAdaptive.RoundToHalf(support.Values) : support.Values;
        // |τ| > λ₁ (an absolute value and one comparison cost less than two comparisons and a logical or); kept
        // entries by number, ascending.
        var keep = _threshold > 0 ? values.abs().gt(threshold) : values.ne(zero);
        var kept = keep.nonzero().reshape(-1);
        // Task i's kept entries are those numbered from TaskOffsets[i] on, up to the next task's.
        var boundaries = searchsorted(kept, tensor(support.TaskOffsets, device: kept.device)).cpu().data<long>().ToArray();
        var indices = support.Indices.index_select(0, kept);
        var keptValues = values.index_select(0, kept);
        return Enumerable.Range(0, support.TaskCount).Select(i => SparseAdaptive.FromParts(shape,
            Slice(indices, boundaries[i], boundaries[i + 1]), Slice(keptValues, boundaries[i], boundaries[i + 1]))).ToArray();
    }

    /// <summary>Elements [start, end) of a flat tensor: a view, outside any dispose scope (the caller owns it).</summary>
    private static Tensor Slice(Tensor flat, long start, long end) => flat.narrow(0, start, end - start).DetachFromDisposeScope();

    /// <summary>Elements of the earlier τ_i's supports (all tasks, all layers), for tests and benchmarks.</summary>
    public long SupportElements => _layers.Sum(s => s.Blocks.Sum(b => b.Count));

    public void Dispose()
    {
        foreach (var state in _layers) state.Dispose();
    }
}
