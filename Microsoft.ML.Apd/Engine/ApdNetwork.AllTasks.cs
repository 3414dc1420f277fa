using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

// Scoring rows for every task at once (task inference). In a fully-connected network the first layer dominates the
// cost (784·256 of 784·256 + 256·128 weights), and θ_t = σ ⊙ M_t + A_t (A_t = σ̃_g(t) + τ_t, sparse) factors it:
// x θ_tᵀ = (x σᵀ) ⊙ m_t + x A_tᵀ. So x σᵀ is computed once for all tasks (once per σ: frozen cohorts have their own),
// and each task adds its sparse A_t (and, when it has a low-rank part, (x V_t) U_tᵀ: r·(in + out) operations per row).
internal sealed partial class ApdNetwork
{
    /// <summary>
    /// Logits [N, ClassCount(t)] of every task t of <paramref name="tasks"/> for features [N, InputSize]: the same
    /// function as <see cref="Forward"/> per task (to float rounding), with the first layer's shared product computed
    /// once. Convolutional networks run <see cref="Forward"/> per task. The caller disposes the results.
    /// </summary>
    public Tensor[] ForwardAll(Tensor features, IReadOnlyList<string> tasks)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (ConvolutionLayerCount > 0 || _layers.Count == 0)
            return tasks.Select(task => Forward(features, task)).ToArray();
        if (features.dim() != 2 || features.shape[1] != Architecture.InputSize)
            throw new ArgumentException($"Features must be [N, {Architecture.InputSize}].", nameof(features));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = features.to(ScalarType.Float32, Device);
        var first = _layers[0];
        // x σᵀ, [N, out], once per σ the tasks use: the live σ (key −1) and each frozen cohort's σ_c. Made inside a
        // task's scope, kept in this one.
        var sharedProducts = new Dictionary<int, Tensor>();
        Tensor SharedProduct(TaskSlot slot)
        {
            int key = slot.FrozenOn ?? -1;
            if (!sharedProducts.TryGetValue(key, out var product))
                sharedProducts[key] = product = x.matmul(first.SharedOf(slot).t()).MoveToOuterDisposeScope();
            return product;
        }
        var columns = x.t().contiguous();          // xᵀ, [in, N]: A_t xᵀ runs one axpy per non-zero of A_t
        var logits = new Tensor[tasks.Count];
        // Each task's cached tensors are leased and released per task, so scoring thousands of tasks holds at most
        // the cache's budget plus one task.
        for (int t = 0; t < tasks.Count; t++)
        {
            using var taskScope = NewDisposeScope();
            string task = tasks[t];
            var head = HeadOf(task);
            var thetas = Composed(task);
            var (mask, adaptive) = FirstLayerFactors(task);
            var slot = first.Slots[task];
            var preActivation = SharedProduct(slot) * mask + adaptive.mm(columns).t() + slot.Bias;
            if (slot.LowRank is { } lowRank) preActivation += x.mm(lowRank.Right).mm(lowRank.Left.t());
            var h = nn.functional.relu(preActivation);
            for (int l = 1; l < _layers.Count; l++)
                h = _layers[l].Apply(h, thetas[l], _layers[l].Slots[task].Bias);
            logits[t] = nn.functional.linear(h, head.Weight, head.Bias).MoveToOuterDisposeScope();
        }
        return logits.Select(l => l.MoveToOuterDisposeScope()).ToArray();
    }

    /// <summary>m_t as [1, out] and the sparse A_t of the first layer as a sparse COO tensor [out, in], cached in
    /// <see cref="WeightCache"/> (new handles in the caller's scope, as <see cref="Composed"/>).</summary>
    private (Tensor Mask, Tensor Adaptive) FirstLayerFactors(string task) =>
        _cache.Use(task, t =>
        {
            using var scope = NewDisposeScope();
            var layer = _layers[0];
            var mask = sigmoid(layer.Slots[t].MaskLogits).reshape(1, -1);
            var full = layer.SparseAdaptivePart(t);
            long nonZeros = full.count_nonzero().item<long>();
            return new FirstLayer(mask.DetachFromDisposeScope(), full.to_sparse().DetachFromDisposeScope(),
                // COO: [2, nnz] int64 positions and nnz float32 values.
                mask.numel() * sizeof(float) + nonZeros * (2 * sizeof(long) + sizeof(float)));
        }, factors => (factors.Mask.alias(), factors.Adaptive.alias()));

    private sealed class FirstLayer(Tensor mask, Tensor adaptive, long bytes) : ICachedWeights
    {
        public Tensor Mask { get; } = mask;
        public Tensor Adaptive { get; } = adaptive;
        public long Bytes { get; } = bytes;
        public void Dispose() { Mask.Dispose(); Adaptive.Dispose(); }
    }
}
