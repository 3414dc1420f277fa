using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// Hierarchical knowledge consolidation (APD, Sec. 3.3), run every s tasks. Per layer: K-means over the tasks' full
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

    public static void Consolidate(ApdNetwork network, ApdHyperparameters hyperparameters)
    {
        var tasks = network.Tasks.ToArray();
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
            var full = stack(tasks.Select(layer.FullAdaptive)).flatten(1);
            var start = InitialCentroids(layer, tasks, full, clusters, hyperparameters.Seed * 7919 + network.ConsolidationCount * 31 + l);
            var assignment = KMeans.Fit(full, start);

            foreach (var local in layer.LocallyShared.Values) local.Dispose();
            layer.LocallyShared.Clear();
            for (int g = 0; g < clusters; g++)
            {
                var members = Enumerable.Range(0, tasks.Length).Where(i => assignment[i] == g).ToArray();
                if (members.Length == 0) continue;
                if (members.Length == 1)
                {
                    // Alone in its cluster: τ_i := σ̃ + τ_i (the same sum θ used before, so θ_i is unchanged bit for bit,
                    // unless half-precision storage rounds a sum of two stored values).
                    var slot = layer.Slots[tasks[members[0]]];
                    slot.ReplaceAdaptive(SparseAdaptive.FromDense(full[members[0]].reshape(layer.WeightShape), 0, half));
                    slot.Group = g;
                    continue;
                }
                using var index = tensor(members.Select(i => (long)i).ToArray(), device: full.device);
                var rows = full.index_select(0, index);
                var max = rows.amax([0]);
                var min = rows.amin([0]);
                var shared = (max - min) <= beta;
                var locallyShared = where(shared, (max + min) / 2, zeros_like(max));
                // Stored hard-thresholded like τ (the authors prune σ̃_g by λ₁ at inference): θ_i then moves by at most
                // β/2 + λ₁ at shared elements.
                layer.LocallyShared[g] = SparseAdaptive.FromDense(locallyShared.reshape(layer.WeightShape), hyperparameters.SparsityStrength, half);
                foreach (var i in members)
                {
                    var slot = layer.Slots[tasks[i]];
                    slot.ReplaceAdaptive(SparseAdaptive.FromDense(where(shared, zeros_like(max), full[i]).reshape(layer.WeightShape), 0, half));
                    slot.Group = g;
                }
            }
        }
        network.InvalidateCache();
    }

    /// <summary>
    /// Previous clusters' centroids (mean of their current members, in cluster-id order), then rows picked by a
    /// seeded shuffle (tasks without a cluster first, i.e. those learned since the last consolidation).
    /// </summary>
    private static Tensor InitialCentroids(DecomposedLayer layer, string[] tasks, Tensor full, int clusters, int seed)
    {
        var centroids = new List<Tensor>();
        foreach (var g in tasks.Select(t => layer.Slots[t].Group).OfType<int>().Distinct().Order())
        {
            if (centroids.Count == clusters) break;
            var members = Enumerable.Range(0, tasks.Length).Where(i => layer.Slots[tasks[i]].Group == g).Select(i => (long)i).ToArray();
            centroids.Add(full.index_select(0, tensor(members, device: full.device)).mean([0]));
        }
        var random = new Random(seed);
        var candidates = Enumerable.Range(0, tasks.Length)
            .OrderBy(i => layer.Slots[tasks[i]].Group is null ? 0 : 1)
            .ThenBy(_ => random.Next())
            .ToList();
        foreach (var i in candidates)
        {
            if (centroids.Count == clusters) break;
            centroids.Add(full[i]);
        }
        return stack(centroids);
    }
}
