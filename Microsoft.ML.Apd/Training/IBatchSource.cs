using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// A task's training rows as the learner sees them: mini-batches in a new shuffled order every epoch. The learner
/// never holds more than one batch, so a source may keep every row in memory (<see cref="TensorBatchSource"/>) or
/// stream them from a file each epoch.
/// </summary>
internal interface IBatchSource
{
    /// <summary>Rows per epoch (every epoch delivers exactly this many).</summary>
    long RowCount { get; }

    /// <summary>
    /// One epoch's rows in batches of <paramref name="batchSize"/> (the last may be smaller), shuffled with
    /// <paramref name="generator"/> (the task's generator, so a seed fixes the order). Features [b, InputSize] float32,
    /// labels [b] int64 class indices, on any device; each pair belongs to the caller, who disposes it.
    /// Stops with <see cref="OperationCanceledException"/> when <paramref name="cancellation"/> is cancelled.
    /// </summary>
    IEnumerable<(Tensor Features, Tensor Labels)> Epoch(int batchSize, Generator generator, CancellationToken cancellation);
}
