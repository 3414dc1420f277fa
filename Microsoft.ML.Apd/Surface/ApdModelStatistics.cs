using System.Globalization;
using Microsoft.ML.Apd.Engine;

namespace Microsoft.ML.Apd;

/// <summary>
/// Size of an APD model as in the paper (Yoon et al., ICLR 2020): how many parameters it stores for all its tasks,
/// relative to one plain network of the same architecture. Returned by <see cref="ApdTransformer.GetStatistics"/>.
/// </summary>
public sealed class ApdModelStatistics
{
    internal ApdModelStatistics(CapacityReport report, IReadOnlyList<string> tasks)
    {
        Tasks = tasks.ToArray();
        Layers = report.Layers.Select(l => new ApdLayerStatistics(l.Layer, l.Shared, l.Masks, l.Biases, l.Adaptive,
            l.LocallyShared, l.Heads)).ToArray();
        BaseNetworkParameters = report.BaseNetworkParameters;
        StoredParameters = report.StoredParameters;
        Capacity = report.Capacity;
        AdaptiveNonZerosPerTask = new Dictionary<string, long>(report.AdaptiveNonZerosPerTask);
        ClusterGroups = report.ClusterGroups.Select(g => (IReadOnlyList<string>)g.ToArray()).ToArray();
    }

    /// <summary>The model's tasks, in the order they were learned.</summary>
    public IReadOnlyList<string> Tasks { get; }

    /// <summary>
    /// Capacity: <see cref="StoredParameters"/> ÷ <see cref="BaseNetworkParameters"/>. 1.0 means "as large as one
    /// plain network"; training a separate network per task would give the number of tasks.
    /// </summary>
    public double Capacity { get; }

    /// <summary>Non-zero parameters stored for all tasks (shared σ, masks, biases, sparse τ, locally shared σ̃, heads).</summary>
    public long StoredParameters { get; }

    /// <summary>Parameters of one plain network of the same architecture with one head per learned task.</summary>
    public long BaseNetworkParameters { get; }

    /// <summary>Stored parameters per decomposed layer.</summary>
    public IReadOnlyList<ApdLayerStatistics> Layers { get; }

    /// <summary>Non-zeros of each task's sparse task-adaptive parameters τ_t, summed over layers, plus the parameters of its
    /// low-rank part U_t, V_t when it has one.</summary>
    public IReadOnlyDictionary<string, long> AdaptiveNonZerosPerTask { get; }

    /// <summary>Groups of tasks that share locally shared parameters after hierarchical knowledge consolidation.</summary>
    public IReadOnlyList<IReadOnlyList<string>> ClusterGroups { get; }

    /// <summary>E.g. "3 tasks, capacity 1.15× (245,331 stored / 213,546 base parameters)".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Tasks.Count} tasks, capacity {Capacity:F2}× ({StoredParameters:N0} stored / {BaseNetworkParameters:N0} base parameters)");
}
