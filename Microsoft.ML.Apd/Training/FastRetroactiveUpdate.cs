using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// The retroactive term at a cost that does not grow with the number of earlier tasks' dense weights.
/// <para>
/// Per layer, with θ_i* = σ* ⊙ M_i + σ̃_i + τ_i* taken when task t starts (σ*, τ_i* the values then; M_i, σ̃_i frozen),
/// the drift is θ_i − θ_i* = Δσ ⊙ M_i + Δτ_i with Δσ = σ − σ*, Δτ_i = τ_i − τ_i*. So
/// </para>
/// <code>
///   Σ_i ‖Δσ ⊙ M_i + Δτ_i‖² = ⟨Δσ², A⟩ + Σ_{(i,e) ∈ S} (2 Δσ_e M_i,row(e) Δτ_i,e + Δτ_i,e²),   A = Σ_i M_i²
/// </code>
/// <para>
/// where S is the union of the supports of the τ_i: off its support τ_i stays 0, so Δτ_i = 0 there. The first term
/// costs O(P) whatever the number of tasks (A is one vector per layer, fixed for the whole task); the second O(nnz).
/// σ's gradient is 2λ₂(Δσ ⊙ A + Σ_i M_i ⊙ Δτ_i), exactly the dense reference's; each τ_i trains on its support only.
/// </para>
/// <para>
/// Re-activation: off its support, τ_i,e = 0 while the retroactive term would have it compensate the drift
/// r = Δσ_e M_i,row(e). Alone, λ₂(r + τ)² + λ₁|τ| is minimised by τ = −sign(r)(|r| − λ₁/2λ₂) when |r| &gt; λ₁/2λ₂, and
/// that value survives the storage threshold (|τ| &gt; λ₁) only when |r| &gt; λ₁ + λ₁/2λ₂. <see cref="Reactivate"/>
/// (called by the learner after every epoch) adds exactly those elements as a new trainable chunk starting at 0, so
/// τ_i follows σ where the dense reference would keep a non-zero, and nowhere else.
/// </para>
/// </summary>
internal sealed class FastRetroactiveUpdate : IRetroactiveUpdate
{
    private readonly string[] _tasks;
    private readonly double _lambda1, _lambda2;
    private readonly List<LayerState> _layers = new();
    private readonly List<Parameter> _parameters = new();

    /// <summary>What one layer needs: σ*, A = Σ_i M_i², each task's mask, and the trainable chunks of τ values.</summary>
    private sealed class LayerState
    {
        public required Tensor SharedAtStart;     // σ*, [out, ...]
        public required Tensor MaskSquareSum;     // A, broadcastable to σ
        public required Tensor[] Masks;           // M_i per earlier task, [out]
        public required long Columns;             // elements per output unit (P / out)
        public List<Chunk> Chunks { get; } = new();
    }

    /// <summary>τ values of all earlier tasks on some of their elements: flat indices, start values, masks there.</summary>
    private sealed class Chunk
    {
        public required Tensor Indices;           // flat positions in σ, int64 [n]
        public required Tensor MaskAt;            // M_i,row(e), [n]
        public required Tensor ValuesAtStart;     // τ_i,e*, [n]
        public required Parameter Values;         // τ_i,e, trainable, [n]
        public required long[] TaskOffsets;       // entries of task i are [TaskOffsets[i], TaskOffsets[i + 1])
    }

    public FastRetroactiveUpdate(ApdNetwork network, ApdHyperparameters hyperparameters)
    {
        _tasks = network.Tasks.ToArray();
        _lambda1 = hyperparameters.SparsityStrength;
        _lambda2 = hyperparameters.RetroactiveStrength;
        if (_tasks.Length == 0) return;
        using var noGrad = no_grad();
        foreach (var layer in network.Layers)
        {
            using var scope = NewDisposeScope();
            var masks = _tasks.Select(t => sigmoid(layer.Slots[t].MaskLogits)).ToArray();
            var state = new LayerState
            {
                SharedAtStart = layer.Shared.detach().clone(),
                MaskSquareSum = stack(masks).square().sum(dim: 0).reshape(layer.MaskShape),
                Masks = masks,
                Columns = layer.WeightCount / layer.OutputCount,
            };
            var chunk = MakeChunk(state, _tasks.Select(t => (layer.Slots[t].Adaptive.Indices, layer.Slots[t].Adaptive.Values)).ToArray());
            state.SharedAtStart.DetachFromDisposeScope();
            state.MaskSquareSum.DetachFromDisposeScope();
            foreach (var m in masks) m.DetachFromDisposeScope();
            state.Chunks.Add(chunk);
            _layers.Add(state);
        }
    }

    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>Concatenates (indices, start values) of every task into one chunk with a trainable copy of the values.</summary>
    private Chunk MakeChunk(LayerState state, (Tensor Indices, Tensor Values)[] perTask)
    {
        var offsets = new long[perTask.Length + 1];
        for (int i = 0; i < perTask.Length; i++) offsets[i + 1] = offsets[i] + perTask[i].Indices.shape[0];
        var indices = cat(perTask.Select(p => p.Indices).ToList(), 0);
        var maskAt = cat(perTask.Select((p, i) => state.Masks[i].index_select(0, p.Indices.div(state.Columns, rounding_mode: RoundingMode.floor))).ToList(), 0);
        var valuesAtStart = cat(perTask.Select(p => p.Values).ToList(), 0);
        var values = new Parameter(valuesAtStart.clone(), requires_grad: true);
        var chunk = new Chunk
        {
            Indices = indices.DetachFromDisposeScope(),
            MaskAt = maskAt.DetachFromDisposeScope(),
            ValuesAtStart = valuesAtStart.DetachFromDisposeScope(),
            Values = (Parameter)values.DetachFromDisposeScope(),
            TaskOffsets = offsets,
        };
        _parameters.Add(chunk.Values);
        return chunk;
    }

    public Tensor AddGradients(IReadOnlyList<Parameter> shared, double scale)
    {
        if (_tasks.Length == 0) return zeros(1, device: shared[0].device).sum();
        var penalty = Penalty(shared);
        (penalty * scale).backward();
        return penalty.detach();
    }

    /// <summary>λ₂ [⟨Δσ², A⟩ + Σ_S (2 Δσ M Δτ + Δτ²)] + λ₁ Σ_S |τ| over all layers.</summary>
    public Tensor Penalty(IReadOnlyList<Tensor> shared)
    {
        if (_tasks.Length == 0) return zeros(1, device: shared[0].device).sum();
        Tensor? total = null;
        for (int l = 0; l < _layers.Count; l++)
        {
            var state = _layers[l];
            var sharedDrift = shared[l] - state.SharedAtStart;
            var term = (sharedDrift.square() * state.MaskSquareSum).sum();                     // Σ_i ‖Δσ ⊙ M_i‖²
            var flatDrift = sharedDrift.reshape(-1);
            foreach (var chunk in state.Chunks)
            {
                var adaptiveDrift = chunk.Values - chunk.ValuesAtStart;                          // Δτ_i on S_i
                term += 2 * (flatDrift.index_select(0, chunk.Indices) * chunk.MaskAt * adaptiveDrift).sum()  // 2Σ_i⟨Δσ ⊙ M_i, Δτ_i⟩
                    + adaptiveDrift.square().sum();                                              // Σ_i ‖Δτ_i‖²
            }
            term = term * _lambda2 + ApdObjective.AdaptiveSparsity(state.Chunks.Select(c => (Tensor)c.Values), _lambda1);
            total = total is null ? term : total + term;
        }
        return total!;
    }

    /// <summary>
    /// Adds, per layer, the elements outside every τ_i's support where |Δσ_e M_i,row(e)| &gt; λ₁ + λ₁/2λ₂ as a new trainable
    /// chunk (values 0). Returns the new parameters, for the optimizer; empty when nothing qualifies.
    /// </summary>
    public IReadOnlyList<Parameter> Reactivate(IReadOnlyList<Tensor> shared)
    {
        var added = new List<Parameter>();
        if (_tasks.Length == 0 || _lambda2 == 0) return added;
        using var noGrad = no_grad();
        double bound = _lambda1 + _lambda1 / (2 * _lambda2);
        for (int l = 0; l < _layers.Count; l++)
        {
            using var scope = NewDisposeScope();
            var state = _layers[l];
            var flatDrift = (shared[l] - state.SharedAtStart).reshape(-1);
            var perTask = new (Tensor Indices, Tensor Values)[_tasks.Length];
            long count = 0;
            for (int i = 0; i < _tasks.Length; i++)
            {
                var mask = state.Masks[i].repeat_interleave(state.Columns);
                var active = (flatDrift * mask).abs() > bound;
                foreach (var chunk in state.Chunks)
                {
                    var own = chunk.Indices.narrow(0, chunk.TaskOffsets[i], chunk.TaskOffsets[i + 1] - chunk.TaskOffsets[i]);
                    active.index_fill_(0, own, false);
                }
                var indices = active.nonzero().reshape(-1);
                perTask[i] = (indices, zeros(indices.shape[0], device: flatDrift.device));
                count += indices.shape[0];
            }
            if (count == 0) continue;
            var chunkAdded = MakeChunk(state, perTask);
            state.Chunks.Add(chunkAdded);
            added.Add(chunkAdded.Values);
        }
        return added;
    }

    /// <summary>Writes each τ_i (all its chunks) back, hard-thresholded (|τ| ≤ λ₁ ⇒ 0) and sparse.</summary>
    public void Commit(ApdNetwork network)
    {
        using var noGrad = no_grad();
        for (int l = 0; l < _layers.Count; l++)
        {
            var layer = network.Layers[l];
            for (int i = 0; i < _tasks.Length; i++)
            {
                using var scope = NewDisposeScope();
                var dense = zeros(layer.WeightCount, device: layer.Shared.device);
                foreach (var chunk in _layers[l].Chunks)
                {
                    long start = chunk.TaskOffsets[i], length = chunk.TaskOffsets[i + 1] - start;
                    dense.index_copy_(0, chunk.Indices.narrow(0, start, length), chunk.Values.detach().narrow(0, start, length));
                }
                layer.Slots[_tasks[i]].ReplaceAdaptive(SparseAdaptive.FromDense(dense.reshape(layer.WeightShape), _lambda1));
            }
        }
    }

    /// <summary>Stored non-zeros of the earlier τ_i currently trained (all chunks), for tests and benchmarks.</summary>
    public long TrainedElements => _layers.Sum(s => s.Chunks.Sum(c => c.Indices.shape[0]));

    public void Dispose()
    {
        foreach (var state in _layers)
        {
            state.SharedAtStart.Dispose();
            state.MaskSquareSum.Dispose();
            foreach (var m in state.Masks) m.Dispose();
            foreach (var c in state.Chunks)
            {
                c.Indices.Dispose();
                c.MaskAt.Dispose();
                c.ValuesAtStart.Dispose();
                c.Values.Dispose();
            }
        }
    }
}
