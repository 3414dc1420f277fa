namespace Microsoft.ML.Apd;

/// <summary>
/// Stored non-zero parameters of one decomposed layer of an APD network (for <c>"heads"</c>: all task heads together;
/// for <c>"inputs"</c>: every task's model of its inputs, the per-feature mean and variance that route rows without a
/// task id).
/// </summary>
/// <param name="Layer">Layer name, e.g. <c>"fc1"</c>, <c>"conv1"</c>, <c>"heads"</c> or <c>"inputs"</c>.</param>
/// <param name="Shared">Non-zeros of the task-shared parameters σ.</param>
/// <param name="Masks">Parameters of the task-adaptive masks M_t, over all tasks.</param>
/// <param name="Biases">Biases b_t, over all tasks.</param>
/// <param name="Adaptive">Non-zeros of the sparse task-adaptive parameters τ_t, plus the parameters of the low-rank parts U_t, V_t (<see cref="ApdTrainer.Options.LowRankAdaptiveRank"/>), over all tasks.</param>
/// <param name="LocallyShared">Non-zeros of the locally shared parameters σ̃ of task clusters (after consolidation).</param>
/// <param name="Heads">Per-task parameters outside the decomposed layers: the task heads (in the <c>"heads"</c> row)
/// or the tasks' input models (in the <c>"inputs"</c> row).</param>
public sealed record ApdLayerStatistics(string Layer, long Shared, long Masks, long Biases, long Adaptive,
    long LocallyShared, long Heads)
{
    /// <summary>All stored parameters of the layer.</summary>
    public long Total => Shared + Masks + Biases + Adaptive + LocallyShared + Heads;
}
