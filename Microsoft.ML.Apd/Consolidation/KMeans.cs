using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// Lloyd's K-means on T points known only through their Gram matrix G = X Xᵀ [T, T] (float64), deterministic given its
/// start. Every centroid is a weighted mean of points, c_k = Σ_i W_ik x_i (W [T, K]), so
/// ‖x_i − c_k‖² = G_ii − 2 (G W)_ik + (Wᵀ G W)_kk: an iteration costs O(T²K) whatever the points' dimension, and the
/// points themselves (T dense copies of a layer) are never needed.
/// </summary>
internal static class KMeans
{
    /// <summary>
    /// Cluster index of every point. <paramref name="initialWeights"/> [T, K] is the start (column k: the weights of
    /// centroid k, e.g. one point's indicator or a cluster's mean); a centroid that loses all its points stays where it
    /// is. Ties go to the lowest cluster index.
    /// </summary>
    public static int[] Fit(Tensor gram, Tensor initialWeights, int maxIterations = 100)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int rows = (int)gram.shape[0], k = (int)initialWeights.shape[1];
        gram = gram.to(ScalarType.Float64);
        // Row-major [T, K], updated here and handed to Assign as a tensor each iteration.
        var weights = initialWeights.to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        int[]? assignment = null;
        for (int iteration = 0; iteration < maxIterations; iteration++)
        {
            var next = Assign(gram, tensor(weights, [rows, k], device: gram.device));
            if (assignment is not null && next.SequenceEqual(assignment)) break;
            assignment = next;
            for (int c = 0; c < k; c++)
            {
                int members = assignment.Count(a => a == c);
                if (members == 0) continue;
                for (int r = 0; r < rows; r++) weights[r * k + c] = assignment[r] == c ? 1.0 / members : 0;
            }
        }
        return assignment ?? Array.Empty<int>();
    }

    /// <summary>Nearest centroid (squared Euclidean) of every point.</summary>
    public static int[] Assign(Tensor gram, Tensor weights)
    {
        using var scope = NewDisposeScope();
        var products = gram.mm(weights);                              // ⟨x_i, c_k⟩, [T, K]
        var centroidNorms = (weights * products).sum(dim: 0);         // ‖c_k‖², [K]
        var distances = gram.diag().unsqueeze(1) - 2 * products + centroidNorms.unsqueeze(0);
        return distances.argmin(1).cpu().data<long>().ToArray().Select(i => (int)i).ToArray();
    }

    /// <summary>The Gram matrix [T, T] (float64) of sparse points (flat positions ascending, values), summed position by
    /// position over the points that have it: O(Σ_e n_e²) for n_e points non-zero at position e, never a dense point.</summary>
    public static Tensor Gram(IReadOnlyList<(long[] Positions, float[] Values)> points)
    {
        int count = points.Count;
        // One key per entry, position · T + point: sorted, the entries group by position.
        long entries = points.Sum(p => (long)p.Positions.Length);
        var keys = new long[entries];
        var values = new double[entries];
        long next = 0;
        for (int i = 0; i < count; i++)
            for (int j = 0; j < points[i].Positions.Length; j++, next++)
            {
                keys[next] = points[i].Positions[j] * count + i;
                values[next] = points[i].Values[j];
            }
        Array.Sort(keys, values);
        var gram = new double[count * count];
        // One position's points and values at a time, so the quadratic loop does no 64-bit division. Only i ≤ j is
        // summed (the points of a position ascend), then mirrored: each entry gets the same products in the same order
        // as the full loop would give it (a·b = b·a exactly), so the result is the same to the bit at half the work.
        var members = new int[count];
        var pointValues = new double[count];
        for (long start = 0; start < entries;)
        {
            long position = keys[start] / count;
            int n = 0;
            for (long end = start; end < entries && keys[end] / count == position; end++, n++)
            {
                members[n] = (int)(keys[end] % count);
                pointValues[n] = values[end];
            }
            for (int a = 0; a < n; a++)
            {
                long row = (long)members[a] * count;
                double value = pointValues[a];
                for (int b = a; b < n; b++) gram[row + members[b]] += value * pointValues[b];
            }
            start += n;
        }
        for (int i = 0; i < count; i++)
            for (int j = i + 1; j < count; j++) gram[(long)j * count + i] = gram[(long)i * count + j];
        return tensor(gram, [count, count], dtype: ScalarType.Float64);
    }
}
