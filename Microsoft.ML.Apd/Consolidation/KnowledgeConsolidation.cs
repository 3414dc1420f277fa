using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// Hierarchical knowledge consolidation (APD, Sec. 3.3), run every s tasks. Per layer: K-means over the following tasks' full
/// adaptive tensors σ̃_{g(i)} + τ_i with K = K₀ + k·(c − 1) (c-th consolidation, at most the number of tasks), started
/// from the previous clusters' current centroids plus data rows picked by seed. In every cluster with more than one
/// task, an element whose spread max − min over the members is ≤ β moves into the cluster's locally-shared σ̃_g (value
/// (max + min)/2, hard-thresholded by λ₁ as the authors do) and becomes 0 in each member's τ_i; all other elements keep
/// σ̃_g = 0 and τ_i = full value. So θ_i changes by at most β/2 + λ₁ per element, and only at shared elements.
/// Earlier consolidations are superseded.
/// </summary>
internal static class KnowledgeConsolidation
{
    /// <summary>
    /// The consolidation schedule, in one place: consolidation is due after every s-th task learned
    /// (<paramref name="interval"/> = s ≥ 1), counting every task the network ever learned — forgotten ones included
    /// (<see cref="ApdNetwork.LearnedTaskCount"/>), so <see cref="ApdNetwork.Forget"/> never moves the schedule.
    /// </summary>
    public static bool IsDue(ApdNetwork network, int interval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, 1);
        return network.LearnedTaskCount > 0 && network.LearnedTaskCount % interval == 0;
    }

    /// <summary>
    /// Consolidates every layer. Memory stays at O(T² + K·T + P) per layer, never T dense copies of it: K-means needs
    /// the tasks' full adaptive tensors only through their Gram matrix (<see cref="KMeans"/>), computed from the
    /// non-zeros of their stored parts (<see cref="Gram"/>), and each cluster's max/min is streamed over its members
    /// one dense tensor at a time.
    /// </summary>
    public static void Consolidate(ApdNetwork network, ApdHyperparameters hyperparameters)
    {
        // Frozen tasks keep their θ and their cohort's σ̃: only the tasks that follow σ are clustered.
        var tasks = network.FollowingTasks.ToArray();
        if (tasks.Length == 0) return;
        network.InvalidateCache();
        network.ConsolidationCount++;
        int clusters = Math.Clamp(hyperparameters.InitialClusterCount + hyperparameters.ClusterCountIncrement * (network.ConsolidationCount - 1), 1, tasks.Length);
        float beta = (float)hyperparameters.ConsolidationThreshold;
        bool half = hyperparameters.HalfPrecisionStorage;
        for (int l = 0; l < network.Layers.Count; l++)
        {
            var layer = network.Layers[l];
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var slots = tasks.Select(t => layer.Slots[t]).ToArray();
            // The last consolidation's σ̃ stay readable until every member's new τ is written (Full reads them).
            var previous = new Dictionary<int, SparseAdaptive>(layer.LocallyShared);
            layer.LocallyShared.Clear();
            var gram = Gram(slots, previous);
            var start = InitialCentroids(slots, clusters, hyperparameters.Seed * 7919 + network.ConsolidationCount * 31 + l);
            var assignment = KMeans.Fit(gram, start);

            for (int g = 0; g < clusters; g++)
            {
                var members = Enumerable.Range(0, tasks.Length).Where(i => assignment[i] == g).ToArray();
                if (members.Length == 0) continue;
                if (members.Length == 1)
                {
                    // Alone in its cluster: τ_i := σ̃ + τ_i (the same sum θ used before, so θ_i is unchanged bit for bit,
                    // unless half-precision storage rounds a sum of two stored values).
                    using var memberScope = NewDisposeScope();
                    var slot = slots[members[0]];
                    slot.ReplaceAdaptive(SparseAdaptive.FromDense(Full(slot, previous), 0, half));
                    slot.Group = g;
                    continue;
                }
                Tensor? max = null, min = null;
                foreach (var i in members)
                {
                    using var memberScope = NewDisposeScope();
                    var full = Full(slots[i], previous);
                    max = max is null ? full.MoveToOuterDisposeScope() : max.copy_(max.maximum(full));
                    min = min is null ? full.clone().MoveToOuterDisposeScope() : min.copy_(min.minimum(full));
                }
                var shared = (max! - min!) <= beta;
                var locallyShared = where(shared, (max! + min!) / 2, zeros_like(max!));
                // Stored hard-thresholded like τ (the authors prune σ̃_g by λ₁ at inference): θ_i then moves by at most
                // β/2 + λ₁ at shared elements.
                layer.LocallyShared[g] = SparseAdaptive.FromDense(locallyShared, hyperparameters.SparsityStrength, half);
                foreach (var i in members)
                {
                    using var memberScope = NewDisposeScope();
                    var slot = slots[i];
                    slot.ReplaceAdaptive(SparseAdaptive.FromDense(where(shared, zeros_like(max!), Full(slot, previous)), 0, half));
                    slot.Group = g;
                }
            }
            foreach (var local in previous.Values) local.Dispose();
        }
        network.InvalidateCache();
    }

    /// <summary>A task's full adaptive tensor σ̃_{g} + τ_i, dense, with g its group in <paramref name="locallyShared"/>
    /// (the expression of <see cref="DecomposedLayer.FullAdaptive"/>; caller's scope).</summary>
    private static Tensor Full(TaskSlot slot, IReadOnlyDictionary<int, SparseAdaptive> locallyShared)
    {
        var adaptive = slot.Adaptive.ToDense();
        // The scalar α = 1 of the sum held for the call (see TensorOwnership): run per task, `a + b` lost it once.
        using var one = 1.ToScalar();
        return slot.Group is int g && locallyShared.TryGetValue(g, out var local) ? local.ToDense().add_(adaptive, one) : adaptive;
    }

    /// <summary>
    /// The Gram matrix [T, T] (float64) of the tasks' full adaptive tensors σ̃_{g(i)} + τ_i, from the products of their
    /// stored parts, ⟨σ̃_g + τ_i, σ̃_h + τ_j⟩ = ⟨σ̃_g, σ̃_h⟩ + ⟨σ̃_g, τ_j⟩ + ⟨τ_i, σ̃_h⟩ + ⟨τ_i, τ_j⟩: one sparse Gram of
    /// the K σ̃ and the T τ (<see cref="KMeans.Gram"/>, H [K + T, K + T]), then G = W H Wᵀ with row i of W selecting τ_i
    /// and σ̃_{g(i)}. The work per element is quadratic in the parts non-zero there (at most K σ̃ and the τ that have it),
    /// not in the full tensors that are non-zero there, which include every member of a cluster wherever its σ̃ is (about
    /// T²·P after a consolidation).
    /// </summary>
    internal static Tensor Gram(IReadOnlyList<TaskSlot> slots, IReadOnlyDictionary<int, SparseAdaptive> locallyShared)
    {
        var groups = locallyShared.Keys.Order().ToArray();
        var parts = groups.Select(g => locallyShared[g]).Concat(slots.Select(s => s.Adaptive))
            .Select(p => (p.Indices.data<long>().ToArray(), p.Values.data<float>().ToArray())).ToList();
        using var products = KMeans.Gram(parts);
        var select = new double[slots.Count, groups.Length + slots.Count];
        for (int i = 0; i < slots.Count; i++)
        {
            select[i, groups.Length + i] = 1;
            if (slots[i].Group is int g && Array.IndexOf(groups, g) is var k and >= 0) select[i, k] = 1;
        }
        using var weights = tensor(select, dtype: ScalarType.Float64);
        using var half = weights.mm(products);
        return half.mm(weights.t());
    }

    /// <summary>
    /// Start weights [T, K] (see <see cref="KMeans.Fit"/>): previous clusters' centroids (mean of their current members,
    /// in cluster-id order), then single tasks picked by a seeded shuffle (tasks without a cluster first, i.e. those
    /// learned since the last consolidation).
    /// </summary>
    private static Tensor InitialCentroids(TaskSlot[] slots, int clusters, int seed)
    {
        var columns = new List<double[]>();
        foreach (var g in slots.Select(s => s.Group).OfType<int>().Distinct().Order())
        {
            if (columns.Count == clusters) break;
            var members = Enumerable.Range(0, slots.Length).Where(i => slots[i].Group == g).ToArray();
            var column = new double[slots.Length];
            foreach (var i in members) column[i] = 1.0 / members.Length;
            columns.Add(column);
        }
        var random = new Random(seed);
        var candidates = Enumerable.Range(0, slots.Length)
            .OrderBy(i => slots[i].Group is null ? 0 : 1)
            .ThenBy(_ => random.Next())
            .ToList();
        foreach (var i in candidates)
        {
            if (columns.Count == clusters) break;
            var column = new double[slots.Length];
            column[i] = 1;
            columns.Add(column);
        }
        return stack(columns.Select(c => tensor(c, dtype: ScalarType.Float64)).ToList(), 1);
    }
}
